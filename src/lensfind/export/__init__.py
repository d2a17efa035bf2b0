"""torch -> ONNX: exporters with parity checks, ensembles as one graph, fp16/int8 variants.

``onnx_export`` (one checkpoint), ``ensemble_export`` (a weighted or gated
ensemble as one graph), ``precision`` (fp16 / int8 model directories) and
``torch_weights`` (the torch state dict beside an ONNX model). Needs the
``train`` extra; what the exported models run on is :mod:`lensfind.runtime`.
"""
