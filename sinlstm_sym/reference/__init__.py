"""Reference implementations the symbolic model is checked against (a Gluon port)."""
