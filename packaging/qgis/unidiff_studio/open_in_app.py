""""Open in UniDiff Studio" on a raster layer: the app started on the
layer's file (it sorts a cube, a SAR image and labels by their names, as
when files are given on its command line)."""

import subprocess

from qgis.core import Qgis, QgsProcessingException

from .binary import find_binary
from .layers import layer_file


def open_layer_in_app(layer, message_bar):
    try:
        path = layer_file(layer, "Open in UniDiff Studio")
        if path is None:
            raise QgsProcessingException("select a raster layer first")
        subprocess.Popen([find_binary(), path], stdin=subprocess.DEVNULL)
    except (QgsProcessingException, OSError) as e:
        message_bar.pushMessage("UniDiff Studio", str(e), level=Qgis.Critical)
