"""PyFlink jobs, one per file, named by what they produce; each is wiring: source, steps, sinks."""
