"""Lightning callbacks and loggers that stream metrics and signals into the run store."""
