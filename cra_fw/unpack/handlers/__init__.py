"""cra-fw's own unpack handlers, one module per format (or family), listed in one tuple.

Adding a format: a :class:`~cra_fw.unpack.native.NativeHandler` subclass in a
new module here, and one line below.  Order matters: a region an earlier
handler found is not offered to later ones.  Binary layouts shared with the
verifiers are read by :mod:`cra_fw.parsers`.
"""

from __future__ import annotations

from cra_fw.unpack.handlers.arcadyan import ArcadyanHandler
from cra_fw.unpack.handlers.chk import ChkHandler
from cra_fw.unpack.handlers.combined_ext import CombinedExtHandler
from cra_fw.unpack.handlers.cramfs import CramfsHandler
from cra_fw.unpack.handlers.dlob import DlobHandler
from cra_fw.unpack.handlers.esp_flash import EspFlashHandler
from cra_fw.unpack.handlers.esp_image import EspImageHandler
from cra_fw.unpack.handlers.esp_nvs import EspNvsHandler
from cra_fw.unpack.handlers.esp_partition_table import EspPartitionTableHandler
from cra_fw.unpack.handlers.ext import ExtHandler
from cra_fw.unpack.handlers.fit import FitHandler
from cra_fw.unpack.handlers.fwtool import FwtoolHandler
from cra_fw.unpack.handlers.intel_hex import IntelHexHandler
from cra_fw.unpack.handlers.jffs2 import Jffs2Handler
from cra_fw.unpack.handlers.jffs2_eof import Jffs2EofHandler
from cra_fw.unpack.handlers.littlefs import LittleFsHandler
from cra_fw.unpack.handlers.mcuboot import McubootHandler
from cra_fw.unpack.handlers.nordic_dfu import NordicDfuHandler
from cra_fw.unpack.handlers.packimgs import PackImgsHandler
from cra_fw.unpack.handlers.quantenna import QuantennaUbootHandler
from cra_fw.unpack.handlers.realtek import RealtekHandler
from cra_fw.unpack.handlers.seama import SeamaHandler
from cra_fw.unpack.handlers.squashfs import SquashfsHandler
from cra_fw.unpack.handlers.srec import SrecHandler
from cra_fw.unpack.handlers.tplink import TplinkHandler
from cra_fw.unpack.handlers.trx import TrxHandler
from cra_fw.unpack.handlers.ubi import UbifsHandler, UbiHandler
from cra_fw.unpack.handlers.ubiquiti import UbiquitiHandler
from cra_fw.unpack.handlers.uf2 import Uf2Handler
from cra_fw.unpack.handlers.uimage import UImageHandler
from cra_fw.unpack.handlers.vxworks import VxWorksHandler
from cra_fw.unpack.handlers.yaffs2 import Yaffs2Handler
from cra_fw.unpack.handlers.zyxel import ZyxelHandler
from cra_fw.unpack.native import NativeHandler

NATIVE_HANDLERS: tuple[NativeHandler, ...] = (
    EspFlashHandler(),
    EspImageHandler(),
    EspPartitionTableHandler(),
    EspNvsHandler(),
    LittleFsHandler(),
    IntelHexHandler(),
    SrecHandler(),
    Uf2Handler(),
    NordicDfuHandler(),
    McubootHandler(),
    QuantennaUbootHandler(),
    # vendor firmware headers: outer wrappers first (a ZyXEL trailer or CHK wraps a TRX)
    ZyxelHandler(),
    CombinedExtHandler(),
    ArcadyanHandler(),
    ChkHandler(),
    TrxHandler(),
    UbiquitiHandler(),
    RealtekHandler(),
    TplinkHandler(),
    DlobHandler(),
    SeamaHandler(),
    PackImgsHandler(),
    FwtoolHandler(),
    Jffs2EofHandler(),
    UImageHandler(),
    FitHandler(),
    UbiHandler(),
    UbifsHandler(),
    ExtHandler(),
    Yaffs2Handler(),
    SquashfsHandler(),
    CramfsHandler(),
    Jffs2Handler(),
    VxWorksHandler(),
)
