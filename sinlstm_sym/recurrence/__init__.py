"""The LSTM recurrence itself: its parameters' names, shapes, gate order, seeded initialisation and packing."""
