"""``ganforge serve``: a local, offline web page to play with a trained model (Gradio).

:mod:`ganforge.serve.model` draws (no web framework in it); :mod:`ganforge.serve.page` lays out the
controls of the model's kind. Gradio is an optional extra (``pip install 'ganforge[serve]'``)."""
