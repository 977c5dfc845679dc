"""`make bench`: careroute's throughput and latency, measured beside a bare Kafka baseline."""
