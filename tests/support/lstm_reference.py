"""The stacked LSTM computed independently in float64 numpy, to check the library's outputs against."""
import numpy as np


def reference_lstm(params, hidden_sizes, windows):
    """The stacked LSTM in float64 numpy, gates (input, forget, cell, output) as mx.rnn.LSTMCell."""
    def sigmoid(v):
        return 1.0 / (1.0 + np.exp(-v))
    x = np.asarray(windows, np.float64)[:, :, None]
    for i, h in enumerate(hidden_sizes):
        w, u = (np.asarray(params[f"lstm{i}_{p}_weight"], np.float64) for p in ("i2h", "h2h"))
        b = np.asarray(params[f"lstm{i}_i2h_bias"], np.float64) + params[f"lstm{i}_h2h_bias"]
        state, cell, steps = np.zeros((x.shape[0], h)), np.zeros((x.shape[0], h)), []
        for t in range(x.shape[1]):
            gates = x[:, t] @ w.T + state @ u.T + b
            cell = sigmoid(gates[:, h:2 * h]) * cell + sigmoid(gates[:, :h]) * np.tanh(gates[:, 2 * h:3 * h])
            state = sigmoid(gates[:, 3 * h:]) * np.tanh(cell)
            steps.append(state)
        x = np.stack(steps, axis=1)
    return x[:, :, 0]
