"""The Processing provider `unidiff`: the binary's setting and one
algorithm per headless command."""

import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from . import algorithms

ICON = os.path.join(os.path.dirname(__file__), "icon.svg")


class UnidiffProvider(QgsProcessingProvider):
    def id(self):
        return "unidiff"

    def name(self):
        return "UniDiff Studio"

    def longName(self):  # noqa: N802 (QGIS's name)
        return "UniDiff Studio: land cover from hyperspectral and SAR rasters"

    def icon(self):
        return QIcon(ICON)

    def load(self):
        self._setting_added = False
        try:
            from processing.core.ProcessingConfig import ProcessingConfig, Setting

            from .binary import SETTING

            ProcessingConfig.addSetting(
                Setting(
                    self.name(),
                    SETTING,
                    "unidiff-studio binary (empty: found on PATH)",
                    "",
                    valuetype=Setting.FILE,
                )
            )
            ProcessingConfig.readSettings()
            self._setting_added = True
        except ImportError:
            # Without QGIS's processing plugin (qgis_process loads it) the
            # binary is still found by $UNIDIFF_STUDIO_BIN or on PATH.
            pass
        self.refreshAlgorithms()
        return True

    def unload(self):
        if getattr(self, "_setting_added", False):
            from processing.core.ProcessingConfig import ProcessingConfig

            from .binary import SETTING

            ProcessingConfig.removeSetting(SETTING)

    def loadAlgorithms(self):  # noqa: N802 (QGIS's name)
        for algorithm in algorithms.ALL:
            self.addAlgorithm(algorithm())
