"""Video files in: decoding (PyAV), the clip grid, backbones, feature extraction, a synthetic video dataset.

Sits beside :mod:`rdfa_s6.data` (it produces what ``data`` reads) and never imports ``models`` or ``train``.
Modules: :mod:`.clips` (clip index arithmetic), :mod:`.decode` (PyAV decoding, resampling, rotation, errors),
:mod:`.backbones` (the registry and the guarded torchvision import), :mod:`.handcrafted` (the weight-free
``colour-motion`` feature), :mod:`.extract` (the pipeline), :mod:`.records` (what it writes, merging, what a run
records), :mod:`.reproduce` (extracting as a model's training features were), :mod:`.synth` (the demo's videos).
Nothing heavy is imported here.
"""
