"""Models in and out of rnnkit: Keras files and live models (`keras`, `keras_weights`), PyTorch
modules (`torch`), and rnnkit's own format (`native`: `rnnkit.save` / `rnnkit.load`).

`keras_weights` reads weights into any model with a `layers` list and imports no model class,
so `models` may use it (for `Sequential.load_weights`) without an import cycle.
"""
