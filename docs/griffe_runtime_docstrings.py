"""A griffe extension for the API reference: docstrings set at import time.

mkdocstrings reads kdrop's source without importing it, so a class whose
docstring is assigned by code (`__doc__ = _DOC.format(...)`, as DropBlock1D
and DropBlock2D share one template) would show none. For such a class this
extension imports the module and takes the docstring Python sees.
"""

import importlib
import inspect

import griffe


class RuntimeDocstrings(griffe.Extension):
    def on_class(self, *, cls, loader, **kwargs):
        if cls.docstring is not None or "__doc__" not in cls.members:
            return
        module = importlib.import_module(cls.module.path)
        doc = getattr(module, cls.name).__doc__
        cls.docstring = griffe.Docstring(inspect.cleandoc(doc), parent=cls)
        del cls.members["__doc__"]
