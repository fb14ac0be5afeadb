"""Using a trained model: the Predictor and its figures."""
