"""An emulated Qumulo REST API backed by a real directory (see README: sim/qumulo)."""
