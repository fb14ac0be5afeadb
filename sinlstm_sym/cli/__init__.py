"""The command lines: ``sinlstm-train``, ``sinlstm-evaluate``, ``sinlstm-export`` and ``sinlstm-series``, their
flags generated from the declared settings, and the one runner that turns their failures into exit codes."""
