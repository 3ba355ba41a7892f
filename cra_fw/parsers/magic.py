"""Magic numbers of the containers firmware nests: what unpack sniffs and inventory classifies by."""

from __future__ import annotations

# (offset, magic) pairs that identify a container at the start of a file
HEAD_MAGICS: tuple[tuple[int, bytes], ...] = (
    (0, b"\x1f\x8b\x08"),  # gzip
    (0, b"\xfd7zXZ\x00"),  # xz
    (0, b"BZh"),  # bzip2
    (0, b"\x28\xb5\x2f\xfd"),  # zstd
    (0, b"\x04\x22\x4d\x18"),  # lz4
    (0, b"\x89LZO\x00"),  # lzop
    (0, b"PK\x03\x04"),  # zip
    (0, b"7z\xbc\xaf\x27\x1c"),  # 7z
    (0, b"Rar!"),  # rar
    (0, b"070701"),
    (0, b"070702"),
    (0, b"070707"),
    (0, b"\xc7\x71"),  # cpio
    (257, b"ustar"),  # tar
    (0, b"hsqs"),
    (0, b"sqsh"),
    (0, b"shsq"),
    (0, b"qshs"),  # squashfs
    (0, b"\x85\x19"),
    (0, b"\x19\x85"),  # jffs2
    (0, b"UBI#"),  # ubi
    (0, b"\x31\x18\x10\x06"),  # ubifs
    (0, b"\x27\x05\x19\x56"),  # uImage
    (0, b"\xd0\x0d\xfe\xed"),  # FDT / FIT
    (0x438, b"\x53\xef"),  # ext2/3/4
    (1024, b"\xe2\xe1\xf5\xe0"),  # erofs
    (0, b"\x45\x3d\xcd\x28"),  # cramfs
    (0, b"-rom1fs-"),  # romfs
    (0, b"HDR0"),  # trx
    (0, b"\x2a\x23\x24\x5e"),  # Netgear CHK
    (0, b"\x5e\xa3\xa4\x17"),  # SEAMA / DLOB
    (0, b"UBNT"),
    (0, b"OPEN"),  # Ubiquiti
    (0, b"SHRS"),  # D-Link encrypted
    (0, b"CE01"),  # OpenWrt combined extended image (OpenMesh)
    (0, b"cs6c"),
    (0, b"cr6c"),
    (0, b"csys"),
    (0, b"csro"),
    (0, b"cs6b"),
    (0, b"cr6b"),
    (0, b"r6cr"),
    (0, b"r6br"),  # Realtek SDK headers
    (0, b"!<arch>\n"),  # ar / ipk
    (0, b"\x3a\xff\x26\xed"),  # android sparse
    (0x8001, b"CD001"),  # iso9660
    (0x36, b"FAT1"),  # FAT12/16 boot sector (ESP-IDF fat data partitions)
    (0x52, b"FAT32"),
    (8, b"littlefs"),  # LittleFS superblock name
)
