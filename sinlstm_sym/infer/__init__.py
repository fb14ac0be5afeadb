"""Using a trained model: the Predictor and its bound executors, the error per length (``evaluate``), the
ONNX export and the prediction plots."""
