"""Registry of attention blocks that YOLOv5 model YAMLs may name (the mmengine ``Registry`` idea).

Contract, stated once: a block is an ``nn.Module`` class built as ``Block(c1, *yaml_args)`` —
the first positional argument is the input channel count, which the parser supplies (width
multiple applied, as for every other YOLOv5 layer); the YAML row carries only the remaining
arguments. A block preserves its input's shape: ``(B, c1, H, W) -> (B, c1, H, W)``.
"""

from __future__ import annotations

import sys

import torch
import torch.nn as nn

from .start import residual_forward

BLOCKS: dict[str, type[nn.Module]] = {}


def yolov5_modules(namespace: dict | None = None) -> dict[str, type]:
    """YOLOv5's own layer classes by name, as seen from a ``models.yolo`` module namespace
    (default: ``yolov5.models.yolo``); a block may not take one of these names."""
    if namespace is None:
        import yolov5.models.yolo as yolo
        namespace = vars(yolo)
    return {k: v for k, v in namespace.items()
            if isinstance(v, type) and issubclass(v, nn.Module)
            and v.__module__.endswith(('models.common', 'models.experimental', 'models.yolo'))}


YOLOV5_LAYERS = 'yolov5.models.yolo'


def check_name(key: str) -> None:
    """A block may not take a name yolov5 uses for one of its own layers (its YAMLs would change meaning)."""
    if key in yolov5_modules():
        raise ValueError(f'block name {key!r} is already a YOLOv5 module; register it under another name')


def check_yolov5_names() -> None:
    """Every block registered before yolov5 was imported, checked against its layer names (at activation)."""
    for key in BLOCKS:
        check_name(key)


def module_classes(module) -> list[type]:
    """The nn.Module classes a Python module defines (not those it imports)."""
    return [v for v in vars(module).values()
            if isinstance(v, type) and issubclass(v, nn.Module) and v.__module__ == module.__name__]


def allow_in_checkpoints(*classes) -> None:
    """Let checkpoints that hold these classes load with ``torch.load(weights_only=True)``.

    ``register_block`` does this for the block and every nn.Module class defined in its module;
    call it for helper classes a block imports from elsewhere.
    """
    torch.serialization.add_safe_globals(list(classes))


def register_block(cls=None, *, name: str | None = None, paper: str = ''):
    """Class decorator: make ``cls`` available to model YAMLs under ``name`` (default: class name).

    Usable bare (``@register_block``) or with options (``@register_block(paper='Hu et al. 2018')``).
    Registering the same class again is a no-op; a different class under a taken name, or a name
    that YOLOv5 already uses for one of its own modules, is refused.
    """

    def add(cls):
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise TypeError(f'register_block expects an nn.Module subclass, got {cls!r}')
        key = name or cls.__name__
        if not key.isidentifier():
            raise ValueError(f'block name {key!r} is not a valid identifier')
        if YOLOV5_LAYERS in sys.modules:  # else checked when yolov5 is first imported (check_yolov5_names)
            check_name(key)
        old = BLOCKS.get(key)
        same = old is not None and (old.__module__, old.__qualname__) == (cls.__module__, cls.__qualname__)
        if old is not None and not same:
            raise ValueError(f'block name {key!r} is already registered for {old.__module__}.{old.__qualname__}')
        if paper or not hasattr(cls, 'paper'):
            cls.paper = paper
        cls.forward = residual_forward(cls.forward)  # identity start when an instance holds a gamma
        BLOCKS[key] = cls
        home = sys.modules.get(cls.__module__)  # the halves of CBAM, helpers of a user block
        allow_in_checkpoints(cls, *(module_classes(home) if home else []))
        return cls

    return add(cls) if cls is not None else add


def shape_problem(module: nn.Module, c1: int, name: str) -> str:
    """'' if ``module`` keeps a (1, c1, 8, 8) input's shape (the contract parsers rely on), else why not."""
    training = module.training
    module.eval()
    with torch.no_grad():
        y = module(torch.zeros(1, c1, 8, 8))
    module.train(training)
    if isinstance(y, torch.Tensor) and y.shape == (1, c1, 8, 8):
        return ''
    shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
    return f'registered block {name} must preserve its input shape, (1, {c1}, 8, 8) became {shape}'
