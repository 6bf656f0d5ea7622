"""Amaranth hardware of the SALO-style sparse attention accelerator.

``hw.config`` holds the one configuration object; every module is generated
from it (the top) or from explicit keyword parameters taken from it (leaves).
"""
