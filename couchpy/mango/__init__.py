"""Mango: declarative queries (`_find`) over JSON indexes; see selector.py for the selector language."""

from .selector import MangoError, compile_selector, normalize, validate

__all__ = ["MangoError", "compile_selector", "normalize", "validate"]
