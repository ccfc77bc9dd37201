"""The course's support code: widgets, plots, exercises and attention maps for the notebooks.

Kept apart from the library that implements the paper (the layers, models, packing and
training in :mod:`binedu`): nothing in :mod:`binedu` imports :mod:`binedu.course`.

- :mod:`.plots`, :mod:`.plots_eval`: matplotlib figures of training runs and models
- :mod:`.widgets`: ipywidgets for the notebooks
- :mod:`.attention_maps`: attention weights to draw
- :mod:`.exercises`: the self-checks, one module per notebook
"""
