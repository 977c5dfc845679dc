"""`careroute simulate`: a jurisdiction's day of 911 calls and agency answers, against a running system."""
