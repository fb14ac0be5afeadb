"""The recurrence itself, declared once: its gates and their order, and MXNet's name for it.

Every parameter shape (``gate_count * h`` rows), the seeded initialisation (one block per gate, the forget
gate's bias) and the fused ``mx.sym.RNN`` operator's ``mode`` are read from :data:`LSTM`; a new recurrence
would be declared here with its parameters (:mod:`~sinlstm_sym.recurrence.params`) and its builders
(:mod:`~sinlstm_sym.model.cells`). The native C++ operator keeps its own LSTM arithmetic.
"""
from dataclasses import dataclass
from typing import Tuple


@dataclass(frozen=True)
class Recurrence:
    """A recurrence of stacked cells.

    Parameters
    ----------
    name : str
        Its name (also the prefix of the layers' parameter names: ``lstm0_``, ``lstm1_``, ...).
    gates : tuple of str
        Its gates in the order of the parameter blocks (each ``h`` rows of every weight and bias).
    rnn_mode : str
        The ``mode`` of MXNet's fused ``RNN`` operator.
    """

    name: str
    gates: Tuple[str, ...]
    rnn_mode: str

    @property
    def gate_count(self) -> int:
        """Number of gates: every weight and bias holds ``gate_count * h`` rows."""
        return len(self.gates)

    def gate_rows(self, gate: str, hidden: int) -> slice:
        """The rows of ``gate``'s block in a weight or bias of a layer of ``hidden`` units.

        Parameters
        ----------
        gate : str
            One of :attr:`gates`.
        hidden : int
            The layer's hidden size.

        Returns
        -------
        slice
            ``hidden`` rows starting at the gate's position times ``hidden``.

        Raises
        ------
        ValueError
            ``gate`` is not one of this recurrence's gates.
        """
        if gate not in self.gates:
            raise ValueError(f"gate must be one of {list(self.gates)} for the {self.name} recurrence, got {gate!r}")
        start = self.gates.index(gate) * hidden
        return slice(start, start + hidden)


# Gates in the order of mx.rnn.LSTMCell, gluon.rnn.LSTMCell and mx.sym.RNN(mode='lstm'): input, forget, cell, output.
LSTM = Recurrence(name="lstm", gates=("input", "forget", "cell", "output"), rnn_mode="lstm")
