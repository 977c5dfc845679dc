"""`make faults`: load from the simulator, one fault at a time, and a checker that counts what was lost."""
