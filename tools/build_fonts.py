"""Build the bundled digit-only fonts, their licence texts and their README.

The subsets in src/xlvision/assets/fonts/ are committed; this script says where each one comes
from and rebuilds them from the Debian font packages named in SOURCES. On a Debian machine with
those packages installed:

    PYTHONPATH=src python tools/build_fonts.py           # (re)write the assets
    PYTHONPATH=src python tools/build_fonts.py --check   # fail if the committed assets differ

The code points a font must cover are read from conf/language/<code>.yaml, so the configs stay the
single source of truth; the languages' font lists and SOURCES must name the same files. The same
input fonts and fontTools version give byte-identical output (timestamps are kept from the
source, never set to "now").
"""

from __future__ import annotations

import argparse
import io
import logging
import re
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import fontTools
import numpy as np
from fontTools import subset
from fontTools.pens.boundsPen import BoundsPen
from fontTools.pens.recordingPen import RecordingPen
from fontTools.ttLib import TTFont

from xlvision.data.render import master_image
from xlvision.languages import Language, available_languages, load_language
from xlvision.paths import FONTS_DIR

SYSTEM_FONTS = Path("/usr/share/fonts")
DEBIAN_DOCS = Path("/usr/share/doc")
COMMON_LICENSES = Path("/usr/share/common-licenses")
NOTDEF_PROBE = "\ue000"
"""A private-use character: no subset maps it, so rendering it draws the font's .notdef."""
MIN_GLYPH_DIFFERENCE = 0.01
"""Mean absolute difference of two master images below which they count as the same drawing.

Real digits can be close: Thai ๔ and ๕, Lao ໔ and ໕ differ by one small hook, Myanmar ၀ and ၁ by
a gap (0.017-0.03 in some fonts); a glyph shared by two code points scores 0."""
KEPT_NAME_IDS = [0, 1, 2, 4, 5, 6, 13, 14, 16, 17]
"""Copyright, names, version, licence and licence URL: what the licences ask to keep."""
DROPPED_TABLES = [
    "DSIG", "GDEF", "GSUB", "GPOS", "BASE", "JSTF", "MATH", "kern", "morx", "mort", "feat",
    "prop", "Silf", "Glat", "Gloc", "Feat", "Sill", "FFTM", "LTSH", "PCLT", "hdmx", "VDMX",
    "vhea", "vmtx", "VORG", "meta", "SVG ", "COLR", "CPAL", "EBDT", "EBLC", "EBSC", "CBDT",
    "CBLC", "sbix", "BDF ",
]  # fmt: skip

# language | output file | family (names LICENSES/<Family>.txt) | Debian package | licence |
# source under /usr/share/fonts, "#n" picks face n of a .ttc | new family name, where the OFL
# reserves the original one (a subset is a modified font, so it may not keep that name)
SOURCE_TABLE = """
en | DejaVuSans.ttf                 | DejaVu Sans          | fonts-dejavu-core            | Bitstream-Vera | truetype/dejavu/DejaVuSans.ttf
en | NotoSerif-Regular.ttf          | Noto Serif           | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerif-Regular.ttf
en | NotoSerif-Bold.ttf             | Noto Serif           | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerif-Bold.ttf
en | FreeSerif.ttf                  | FreeSerif            | fonts-freefont-ttf           | GPL-3.0+ with font exception | truetype/freefont/FreeSerif.ttf
en | Purisa.ttf                     | Purisa               | fonts-tlwg-purisa-ttf        | GPL-2.0+ with font exception | truetype/tlwg/Purisa.ttf
en | KleeOne-Regular.ttf            | Klee One             | fonts-klee                   | OFL-1.1 | truetype/klee/KleeOne-Regular.ttf
en | Chilanka-Regular.otf           | Chilanka             | fonts-smc-chilanka           | OFL-1.1 | opentype/malayalam/Chilanka-Regular.otf
en | setofont.ttf                   | Seto Font            | fonts-seto                   | OFL-1.1 | truetype/seto/setofont.ttf
en | LiberationSans-Regular.ttf     | Liberation Sans      | fonts-liberation             | GPL-2.0 with font exception | truetype/liberation/LiberationSans-Regular.ttf
ar | Amiri-Regular.ttf              | Amiri                | fonts-hosny-amiri            | OFL-1.1 | opentype/fonts-hosny-amiri/Amiri-Regular.ttf
ar | Amiri-Bold.ttf                 | Amiri                | fonts-hosny-amiri            | OFL-1.1 | opentype/fonts-hosny-amiri/Amiri-Bold.ttf
ar | NotoNaskhArabic-Regular.ttf    | Noto Naskh Arabic    | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoNaskhArabic-Regular.ttf
ar | NotoSansArabic-Regular.ttf     | Noto Sans Arabic     | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansArabic-Regular.ttf
ar | NotoNastaliqUrdu-Regular.ttf   | Noto Nastaliq Urdu   | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoNastaliqUrdu-Regular.ttf
ar | DejaVuSans.ttf                 | DejaVu Sans          | fonts-dejavu-core            | Bitstream-Vera | truetype/dejavu/DejaVuSans.ttf
ar | KacstOne.ttf                   | KacstOne             | fonts-kacst-one              | GPL-2.0 | truetype/kacst-one/KacstOne.ttf
ar | Thabit.ttf                     | Thabit               | fonts-hosny-thabit           | OFL-1.1 | opentype/fonts-hosny-thabit/Thabit.ttf
ar | FreeSerif.ttf                  | FreeSerif            | fonts-freefont-ttf           | GPL-3.0+ with font exception | truetype/freefont/FreeSerif.ttf
ar | NotoKufiArabic-Regular.ttf     | Noto Kufi Arabic     | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoKufiArabic-Regular.ttf
fa | Amiri-Regular.ttf              | Amiri                | fonts-hosny-amiri            | OFL-1.1 | opentype/fonts-hosny-amiri/Amiri-Regular.ttf
fa | Amiri-Bold.ttf                 | Amiri                | fonts-hosny-amiri            | OFL-1.1 | opentype/fonts-hosny-amiri/Amiri-Bold.ttf
fa | Nazli.ttf                      | Nazli                | fonts-farsiweb               | GPL-2.0+ | truetype/farsiweb/nazli.ttf
fa | FreeFarsi.ttf                  | FreeFarsi            | fonts-freefarsi              | GPL-2.0+ | truetype/freefarsi/FreeFarsi.ttf
fa | Titr.ttf                       | Titr                 | fonts-farsiweb               | GPL-2.0+ | truetype/farsiweb/titr.ttf
fa | NotoKufiArabic-Regular.ttf     | Noto Kufi Arabic     | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoKufiArabic-Regular.ttf
fa | DejaVuSans.ttf                 | DejaVu Sans          | fonts-dejavu-core            | Bitstream-Vera | truetype/dejavu/DejaVuSans.ttf
fa | KacstOne.ttf                   | KacstOne             | fonts-kacst-one              | GPL-2.0 | truetype/kacst-one/KacstOne.ttf
fa | Thabit.ttf                     | Thabit               | fonts-hosny-thabit           | OFL-1.1 | opentype/fonts-hosny-thabit/Thabit.ttf
fa | NotoKufiArabic-Thin.ttf        | Noto Kufi Arabic     | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoKufiArabic-Thin.ttf
fa | NotoKufiArabic-Black.ttf       | Noto Kufi Arabic     | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoKufiArabic-Black.ttf
fa | setofont.ttf                   | Seto Font            | fonts-seto                   | OFL-1.1 | truetype/seto/setofont.ttf
fa | FreeMono.ttf                   | FreeMono             | fonts-freefont-ttf           | GPL-3.0+ with font exception | truetype/freefont/FreeMono.ttf
fa | ClassicNaskhDigits.ttf         | Classic Naskh Digits | fonts-sil-scheherazade       | OFL-1.1 | truetype/scheherazade/Scheherazade-Regular.ttf | Classic Naskh Digits
fa | SindhiNaskhDigits.ttf          | Sindhi Naskh Digits  | fonts-sil-lateef             | OFL-1.1 | opentype/lateef/Lateef-ExtraLight.ttf | Sindhi Naskh Digits
fa | NotoSansArabic-Regular.ttf     | Noto Sans Arabic     | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansArabic-Regular.ttf
hi | NotoSansDevanagari-Regular.ttf | Noto Sans Devanagari | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansDevanagari-Regular.ttf
hi | NotoSansDevanagari-Bold.ttf    | Noto Sans Devanagari | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansDevanagari-Bold.ttf
hi | NotoSerifDevanagari-Regular.ttf | Noto Serif Devanagari | fonts-noto-core            | OFL-1.1 | truetype/noto/NotoSerifDevanagari-Regular.ttf
hi | Lohit-Devanagari.ttf           | Lohit Devanagari     | fonts-lohit-deva             | OFL-1.1 | truetype/lohit-devanagari/Lohit-Devanagari.ttf
hi | Gargi.ttf                      | Gargi                | fonts-gargi                  | GPL-2.0+ | truetype/Gargi/Gargi.ttf
hi | Sahadeva.ttf                   | Sahadeva             | fonts-sahadeva               | GPL-2.0+ | truetype/Sahadeva/sahadeva.ttf
hi | Kalimati.ttf                   | Kalimati             | fonts-deva-extra             | GPL-2.0+ | truetype/fonts-deva-extra/kalimati.ttf
hi | Chandas.ttf                    | Chandas              | fonts-deva-extra             | GPL-2.0+ | truetype/fonts-deva-extra/chandas1-2.ttf
hi | Samyak-Devanagari.ttf          | Samyak Devanagari    | fonts-samyak-deva            | GPL-3.0+ with font exception | truetype/samyak/Samyak-Devanagari.ttf
hi | NotoSansDevanagari-Thin.ttf    | Noto Sans Devanagari | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansDevanagari-Thin.ttf
hi | NotoSansDevanagari-Black.ttf   | Noto Sans Devanagari | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansDevanagari-Black.ttf
hi | NotoSerifDevanagari-Thin.ttf   | Noto Serif Devanagari | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifDevanagari-Thin.ttf
hi | NotoSerifDevanagari-Black.ttf  | Noto Serif Devanagari | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifDevanagari-Black.ttf
hi | Samanata.ttf                   | Samanata             | fonts-deva-extra             | GPL-2.0+ | truetype/fonts-deva-extra/samanata.ttf
hi | FreeSerif.ttf                  | FreeSerif            | fonts-freefont-ttf           | GPL-3.0+ with font exception | truetype/freefont/FreeSerif.ttf
hi | HimalDevanagariDigits.ttf      | Himal Devanagari Digits | fonts-sil-annapurna          | OFL-1.1 | truetype/annapurna/AnnapurnaSIL-Regular.ttf | Himal Devanagari Digits
hi | Sarai.ttf                      | Sarai                | fonts-sarai                  | GPL-2.0 | truetype/Sarai/Sarai.ttf
bn | NotoSansBengali-Regular.ttf    | Noto Sans Bengali    | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansBengali-Regular.ttf
bn | NotoSansBengali-Bold.ttf       | Noto Sans Bengali    | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansBengali-Bold.ttf
bn | NotoSerifBengali-Regular.ttf   | Noto Serif Bengali   | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifBengali-Regular.ttf
bn | Lohit-Bengali.ttf              | Lohit Bengali        | fonts-lohit-beng-bengali     | OFL-1.1 | truetype/lohit-bengali/Lohit-Bengali.ttf
bn | JamrulNormal.ttf               | Jamrul               | fonts-beng-extra             | GPL-2.0+ | truetype/fonts-beng-extra/JamrulNormal.ttf
bn | LikhanNormal.ttf               | Likhan               | fonts-beng-extra             | GPL-2.0+ | truetype/fonts-beng-extra/LikhanNormal.ttf
bn | Ani.ttf                        | Ani                  | fonts-beng-extra             | GPL-3.0+ with font exception | truetype/fonts-beng-extra/Ani.ttf
bn | FreeSerif.ttf                  | FreeSerif            | fonts-freefont-ttf           | GPL-3.0+ with font exception | truetype/freefont/FreeSerif.ttf
bn | NotoSansBengali-Thin.ttf       | Noto Sans Bengali    | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansBengali-Thin.ttf
bn | NotoSansBengali-Black.ttf      | Noto Sans Bengali    | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansBengali-Black.ttf
bn | NotoSerifBengali-Thin.ttf      | Noto Serif Bengali   | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifBengali-Thin.ttf
bn | NotoSerifBengali-Black.ttf     | Noto Serif Bengali   | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifBengali-Black.ttf
bn | MitraMono.ttf                  | Mitra Mono           | fonts-beng-extra             | GPL-2.0+ with font exception | truetype/fonts-beng-extra/MitraMono.ttf
bn | FreeSans.ttf                   | FreeSans             | fonts-freefont-ttf           | GPL-3.0+ with font exception | truetype/freefont/FreeSans.ttf
bn | Mukti.ttf                      | Mukti                | fonts-beng-extra             | GPL-3.0+ with font exception | truetype/fonts-beng-extra/Mukti.ttf
pa | NotoSansGurmukhi-Regular.ttf   | Noto Sans Gurmukhi   | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansGurmukhi-Regular.ttf
pa | NotoSansGurmukhi-Bold.ttf      | Noto Sans Gurmukhi   | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansGurmukhi-Bold.ttf
pa | NotoSerifGurmukhi-Regular.ttf  | Noto Serif Gurmukhi  | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifGurmukhi-Regular.ttf
pa | FreeSerif.ttf                  | FreeSerif            | fonts-freefont-ttf           | GPL-3.0+ with font exception | truetype/freefont/FreeSerif.ttf
pa | setofont.ttf                   | Seto Font            | fonts-seto                   | OFL-1.1 | truetype/seto/setofont.ttf
pa | NotoSansGurmukhi-Thin.ttf      | Noto Sans Gurmukhi   | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansGurmukhi-Thin.ttf
pa | NotoSansGurmukhi-Black.ttf     | Noto Sans Gurmukhi   | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansGurmukhi-Black.ttf
pa | NotoSerifGurmukhi-Thin.ttf     | Noto Serif Gurmukhi  | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifGurmukhi-Thin.ttf
pa | NotoSerifGurmukhi-Black.ttf    | Noto Serif Gurmukhi  | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifGurmukhi-Black.ttf
pa | FreeSans.ttf                   | FreeSans             | fonts-freefont-ttf           | GPL-3.0+ with font exception | truetype/freefont/FreeSans.ttf
pa | Saab.ttf                       | Saab                 | fonts-guru-extra             | GPL-2.0+ with font exception | truetype/fonts-guru-extra/Saab.ttf
gu | NotoSansGujarati-Regular.ttf   | Noto Sans Gujarati   | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansGujarati-Regular.ttf
gu | NotoSansGujarati-Bold.ttf      | Noto Sans Gujarati   | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansGujarati-Bold.ttf
gu | NotoSerifGujarati-Regular.ttf  | Noto Serif Gujarati  | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifGujarati-Regular.ttf
gu | Rekha.ttf                      | Rekha                | fonts-gujr-extra             | GPL-2.0+ | truetype/fonts-gujr-extra/Rekha.ttf
gu | Padmaa.ttf                     | Padmaa               | fonts-gujr-extra             | GPL-2.0+ | truetype/fonts-gujr-extra/padmaa.ttf
gu | Kalapi.ttf                     | Kalapi               | fonts-kalapi                 | OFL-1.1 | truetype/fonts-kalapi/Kalapi.ttf
gu | Rasa-Regular.ttf               | Rasa                 | fonts-yrsa-rasa              | OFL-1.1 | truetype/fonts-yrsa-rasa/Rasa-Regular.ttf
gu | Samyak-Gujarati.ttf            | Samyak Gujarati      | fonts-samyak-gujr            | GPL-3.0+ with font exception | truetype/samyak-fonts/Samyak-Gujarati.ttf
gu | Lohit-Gujarati.ttf             | Lohit Gujarati       | fonts-lohit-gujr             | OFL-1.1 | truetype/lohit-gujarati/Lohit-Gujarati.ttf
or | NotoSansOriya-Regular.ttf      | Noto Sans Oriya      | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansOriya-Regular.ttf
or | NotoSansOriya-Bold.ttf         | Noto Sans Oriya      | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansOriya-Bold.ttf
or | Utkal.ttf                      | Utkal                | fonts-orya-extra             | GPL-2.0+ | truetype/fonts-orya-extra/utkal.ttf
or | Samyak-Oriya.ttf               | Samyak Oriya         | fonts-samyak-orya            | GPL-3.0+ with font exception | truetype/samyak-fonts/Samyak-Oriya.ttf
or | Lohit-Odia.ttf                 | Lohit Odia           | fonts-lohit-orya             | OFL-1.1 | truetype/lohit-oriya/Lohit-Odia.ttf
ta | NotoSansTamil-Regular.ttf      | Noto Sans Tamil      | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansTamil-Regular.ttf
ta | NotoSansTamil-Bold.ttf         | Noto Sans Tamil      | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansTamil-Bold.ttf
ta | NotoSerifTamil-Regular.ttf     | Noto Serif Tamil     | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifTamil-Regular.ttf
ta | Lohit-Tamil.ttf                | Lohit Tamil          | fonts-lohit-taml             | OFL-1.1 | truetype/lohit-tamil/Lohit-Tamil.ttf
ta | FreeSerif.ttf                  | FreeSerif            | fonts-freefont-ttf           | GPL-3.0+ with font exception | truetype/freefont/FreeSerif.ttf
ta | setofont.ttf                   | Seto Font            | fonts-seto                   | OFL-1.1 | truetype/seto/setofont.ttf
ta | MeeraInimai-Regular.ttf        | Meera Inimai         | fonts-meera-inimai           | OFL-1.1 | truetype/fonts-meera-inimai/MeeraInimai-Regular.ttf
te | NotoSansTelugu-Regular.ttf     | Noto Sans Telugu     | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansTelugu-Regular.ttf
te | NotoSansTelugu-Bold.ttf        | Noto Sans Telugu     | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansTelugu-Bold.ttf
te | NotoSerifTelugu-Regular.ttf    | Noto Serif Telugu    | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifTelugu-Regular.ttf
te | Lohit-Telugu.ttf               | Lohit Telugu         | fonts-lohit-telu             | OFL-1.1 | truetype/lohit-telugu/Lohit-Telugu.ttf
te | Pothana2000.ttf                | Pothana2000          | fonts-telu-extra             | GPL-2.0+ | truetype/fonts-telu-extra/Pothana2000.ttf
te | Gurajada.ttf                   | Gurajada             | fonts-teluguvijayam          | OFL-1.1 | truetype/teluguvijayam/Gurajada.ttf
te | Mandali-Regular.ttf            | Mandali              | fonts-teluguvijayam          | OFL-1.1 | truetype/teluguvijayam/Mandali-Regular.ttf
te | NATS.ttf                       | NATS                 | fonts-teluguvijayam          | OFL-1.1 | truetype/teluguvijayam/NATS.ttf
te | Ramaraja-Regular.ttf           | Ramaraja             | fonts-teluguvijayam          | OFL-1.1 (font metadata: GPL-2.0) | truetype/teluguvijayam/Ramaraja-Regular.ttf
te | Suravaram.ttf                  | Suravaram            | fonts-teluguvijayam          | OFL-1.1 | truetype/teluguvijayam/Suravaram.ttf
te | TenaliRamakrishna-Regular.ttf  | Tenali Ramakrishna   | fonts-teluguvijayam          | OFL-1.1 (font metadata: GPL-2.0) | truetype/teluguvijayam/TenaliRamakrishna-Regular.ttf
te | setofont.ttf                   | Seto Font            | fonts-seto                   | OFL-1.1 | truetype/seto/setofont.ttf
te | NotoSansTelugu-Thin.ttf        | Noto Sans Telugu     | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansTelugu-Thin.ttf
te | NotoSansTelugu-Black.ttf       | Noto Sans Telugu     | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansTelugu-Black.ttf
te | NotoSerifTelugu-Thin.ttf       | Noto Serif Telugu    | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifTelugu-Thin.ttf
te | NotoSerifTelugu-Black.ttf      | Noto Serif Telugu    | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifTelugu-Black.ttf
te | Vemana2000.ttf                 | Vemana2000           | fonts-telu-extra             | GPL-2.0+ | truetype/fonts-telu-extra/vemana2000.ttf
te | Gidugu.ttf                     | Gidugu               | fonts-teluguvijayam          | OFL-1.1 | truetype/teluguvijayam/Gidugu.ttf
te | NTR.ttf                        | NTR                  | fonts-teluguvijayam          | OFL-1.1 | truetype/teluguvijayam/NTR.ttf
te | Dhurjati.ttf                   | Dhurjati             | fonts-teluguvijayam          | OFL-1.1 (font metadata: GPL-2.0) | truetype/teluguvijayam/dhurjati.ttf
te | Suranna.ttf                    | Suranna              | fonts-teluguvijayam          | OFL-1.1 (font metadata: GPL-2.0) | truetype/teluguvijayam/suranna.ttf
te | Peddana-Regular.ttf            | Peddana              | fonts-teluguvijayam          | OFL-1.1 (font metadata: GPL-2.0) | truetype/teluguvijayam/Peddana-Regular.ttf
te | PottiSreeramulu.ttf            | Potti Sreeramulu     | fonts-teluguvijayam          | OFL-1.1 | truetype/teluguvijayam/PottiSreeramulu.ttf
te | Timmana.ttf                    | Timmana              | fonts-teluguvijayam          | OFL-1.1 (font metadata: GPL-2.0) | truetype/teluguvijayam/TimmanaRegular.ttf
te | Ramabhadra.ttf                 | Ramabhadra           | fonts-teluguvijayam          | OFL-1.1 (font metadata: GPL-2.0) | truetype/teluguvijayam/ramabhadra.ttf
te | Ponnala.ttf                    | Ponnala              | fonts-teluguvijayam          | OFL-1.1 | truetype/teluguvijayam/Ponnala.ttf
te | SyamalaRamana.ttf              | Syamala Ramana       | fonts-teluguvijayam          | OFL-1.1 | truetype/teluguvijayam/SyamalaRamana.ttf
te | Mallanna.ttf                   | Mallanna             | fonts-teluguvijayam          | OFL-1.1 (font metadata: GPL-2.0) | truetype/teluguvijayam/mallanna.ttf
kn | NotoSansKannada-Regular.ttf    | Noto Sans Kannada    | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansKannada-Regular.ttf
kn | NotoSansKannada-Bold.ttf       | Noto Sans Kannada    | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansKannada-Bold.ttf
kn | NotoSerifKannada-Regular.ttf   | Noto Serif Kannada   | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifKannada-Regular.ttf
kn | Lohit-Kannada.ttf              | Lohit Kannada        | fonts-lohit-knda             | OFL-1.1 | truetype/lohit-kannada/Lohit-Kannada.ttf
kn | setofont.ttf                   | Seto Font            | fonts-seto                   | OFL-1.1 | truetype/seto/setofont.ttf
kn | NotoSansKannada-Thin.ttf       | Noto Sans Kannada    | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansKannada-Thin.ttf
kn | NotoSansKannada-Black.ttf      | Noto Sans Kannada    | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansKannada-Black.ttf
kn | NotoSerifKannada-Thin.ttf      | Noto Serif Kannada   | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifKannada-Thin.ttf
kn | NotoSerifKannada-Black.ttf     | Noto Serif Kannada   | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifKannada-Black.ttf
kn | PeacockKannadaDigits.ttf       | Peacock Kannada Digits | fonts-navilu               | OFL-1.1 | truetype/Navilu/Navilu.ttf | Peacock Kannada Digits
kn | Gubbi.ttf                      | Gubbi                | fonts-gubbi                  | GPL-2.0+ with font exception | truetype/Gubbi/Gubbi.ttf
ml | NotoSansMalayalam-Regular.ttf  | Noto Sans Malayalam  | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansMalayalam-Regular.ttf
ml | NotoSansMalayalam-Bold.ttf     | Noto Sans Malayalam  | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansMalayalam-Bold.ttf
ml | NotoSerifMalayalam-Regular.ttf | Noto Serif Malayalam | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifMalayalam-Regular.ttf
ml | Lohit-Malayalam.ttf            | Lohit Malayalam      | fonts-lohit-mlym             | OFL-1.1 | truetype/lohit-malayalam/Lohit-Malayalam.ttf
ml | Meera-Regular.ttf              | Meera                | fonts-smc-meera              | OFL-1.1 or GPL-3.0+ with font exception | truetype/malayalam/Meera-Regular.ttf
ml | Manjari-Regular.otf            | Manjari              | fonts-smc-manjari            | OFL-1.1 | opentype/malayalam/Manjari-Regular.otf
ml | Gayathri-Regular.otf           | Gayathri             | fonts-smc-gayathri           | OFL-1.1 | opentype/malayalam/Gayathri-Regular.otf
ml | Chilanka-Regular.otf           | Chilanka             | fonts-smc-chilanka           | OFL-1.1 | opentype/malayalam/Chilanka-Regular.otf
ml | Keraleeyam-Regular.ttf         | Keraleeyam           | fonts-smc-keraleeyam         | OFL-1.1 | truetype/malayalam/Keraleeyam-Regular.ttf
ml | Uroob-Regular.ttf              | Uroob                | fonts-smc-uroob              | OFL-1.1 | truetype/malayalam/Uroob-Regular.ttf
ml | Suruma.ttf                     | Suruma               | fonts-smc-suruma             | GPL-3.0+ with font exception | truetype/malayalam/Suruma.ttf
ml | RaghuMalayalamSans-Regular.ttf | RaghuMalayalamSans   | fonts-smc-raghumalayalamsans | GPL-2.0 | truetype/malayalam/RaghuMalayalamSans-Regular.ttf
ml | setofont.ttf                   | Seto Font            | fonts-seto                   | OFL-1.1 | truetype/seto/setofont.ttf
ml | Rachana-Regular.ttf            | Rachana              | fonts-smc-rachana            | OFL-1.1 or GPL-3.0+ with font exception | truetype/malayalam/Rachana-Regular.ttf
si | NotoSansSinhala-Regular.ttf    | Noto Sans Sinhala    | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansSinhala-Regular.ttf
si | NotoSansSinhala-Bold.ttf       | Noto Sans Sinhala    | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansSinhala-Bold.ttf
si | NotoSerifSinhala-Regular.ttf   | Noto Serif Sinhala   | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifSinhala-Regular.ttf
th | NotoSansThai-Regular.ttf       | Noto Sans Thai       | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansThai-Regular.ttf
th | NotoSansThai-Bold.ttf          | Noto Sans Thai       | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansThai-Bold.ttf
th | NotoSerifThai-Regular.ttf      | Noto Serif Thai      | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifThai-Regular.ttf
th | NotoLoopedThai-Regular.ttf     | Noto Looped Thai     | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoLoopedThai-Regular.ttf
th | Garuda.ttf                     | Garuda               | fonts-tlwg-garuda-ttf        | GPL-2.0+ with font exception | truetype/tlwg/Garuda.ttf
th | Kinnari.ttf                    | Kinnari              | fonts-tlwg-kinnari-ttf       | GPL-2.0+ with font exception | truetype/tlwg/Kinnari.ttf
th | Norasi.ttf                     | Norasi               | fonts-tlwg-norasi-ttf        | GPL-2.0+ with font exception | truetype/tlwg/Norasi.ttf
th | Purisa.ttf                     | Purisa               | fonts-tlwg-purisa-ttf        | GPL-2.0+ with font exception | truetype/tlwg/Purisa.ttf
th | Sawasdee.ttf                   | Sawasdee             | fonts-tlwg-sawasdee-ttf      | GPL-2.0+ with font exception | truetype/tlwg/Sawasdee.ttf
th | TlwgTypewriter.ttf             | Tlwg Typewriter      | fonts-tlwg-typewriter-ttf    | GPL-2.0+ with font exception | truetype/tlwg/TlwgTypewriter.ttf
th | Umpush.ttf                     | Umpush               | fonts-tlwg-umpush-ttf        | GPL-2.0+ with font exception | truetype/tlwg/Umpush.ttf
th | Waree.ttf                      | Waree                | fonts-tlwg-waree-ttf         | Bitstream-Vera | truetype/tlwg/Waree.ttf
th | setofont.ttf                   | Seto Font            | fonts-seto                   | OFL-1.1 | truetype/seto/setofont.ttf
th | Loma.ttf                       | Loma                 | fonts-tlwg-loma-ttf          | GPL-2.0+ with font exception | truetype/tlwg/Loma.ttf
lo | NotoSansLao-Regular.ttf        | Noto Sans Lao        | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansLao-Regular.ttf
lo | NotoSansLao-Bold.ttf           | Noto Sans Lao        | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansLao-Bold.ttf
lo | NotoSerifLao-Regular.ttf       | Noto Serif Lao       | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifLao-Regular.ttf
lo | NotoLoopedLao-Regular.ttf      | Noto Looped Lao      | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoLoopedLao-Regular.ttf
lo | DejaVuSans.ttf                 | DejaVu Sans          | fonts-dejavu-core            | Bitstream-Vera | truetype/dejavu/DejaVuSans.ttf
lo | setofont.ttf                   | Seto Font            | fonts-seto                   | OFL-1.1 | truetype/seto/setofont.ttf
lo | PhetsarathOT.ttf               | Phetsarath OT        | fonts-lao                    | LGPL-2.1+ | truetype/lao/Phetsarath_OT.ttf
bo | NotoSerifTibetan-Regular.ttf   | Noto Serif Tibetan   | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifTibetan-Regular.ttf
bo | NotoSerifTibetan-Bold.ttf      | Noto Serif Tibetan   | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifTibetan-Bold.ttf
bo | MonlamUniOuChan1.ttf           | Monlam Uni OuChan1   | fonts-monlam                 | GPL-3.0+ | truetype/tibetan/Monlam Uni OuChan1.ttf
bo | MonlamUniOuChan2.ttf           | Monlam Uni OuChan2   | fonts-monlam                 | GPL-3.0+ | truetype/tibetan/Monlam Uni OuChan2.ttf
bo | SambhotaTsugring.otf           | Sambhota Tsugring    | fonts-sambhota-tsugring      | GPL-3.0+ | truetype/tibetan/fonts-sambhota-tsugring.otf
bo | NotoSerifTibetan-Thin.ttf      | Noto Serif Tibetan   | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifTibetan-Thin.ttf
bo | NotoSerifTibetan-Black.ttf     | Noto Serif Tibetan   | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifTibetan-Black.ttf
bo | MonlamUniSansSerif.ttf         | Monlam Uni Sans Serif | fonts-monlam                | GPL-3.0+ | truetype/tibetan/Monlam Uni Sans Serif.ttf
bo | DzongkhaUchenDigits.ttf        | Dzongkha Uchen Digits | fonts-ddc-uchen             | OFL-1.1 | truetype/tibetan/DDC_Uchen.ttf | Dzongkha Uchen Digits
bo | TibetanMachineUni.ttf          | Tibetan Machine Uni  | fonts-tibetan-machine        | GPL-1.0+ | truetype/tibetan-machine/TibetanMachineUni.ttf
my | NotoSansMyanmar-Regular.ttf    | Noto Sans Myanmar    | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansMyanmar-Regular.ttf
my | NotoSansMyanmar-Bold.ttf       | Noto Sans Myanmar    | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansMyanmar-Bold.ttf
my | Pyidaungsu-Regular.ttf         | Pyidaungsu           | fonts-myanmar                | OFL-1.1 | truetype/mm/Pyidaungsu-2.3_Regular.ttf
my | MyanmarSansPro-Regular.ttf     | Myanmar Sans Pro     | fonts-myanmar                | Apache-2.0 | truetype/mm/MyanmarSansPro-Regular.ttf
my | NKSSmart3.ttf                  | NK S Smart3          | fonts-myanmar                | OFL-1.1 | truetype/mm/NK_SSmart3.ttf
my | NotoSerifMyanmar-Regular.ttf   | Noto Serif Myanmar   | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifMyanmar-Regular.ttf
km | NotoSerifKhmer-Regular.ttf     | Noto Serif Khmer     | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifKhmer-Regular.ttf
km | NotoSerifKhmer-Bold.ttf        | Noto Serif Khmer     | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSerifKhmer-Bold.ttf
km | KhmerOS.ttf                    | Khmer OS             | fonts-khmeros                | LGPL-2.1+ | truetype/khmeros/KhmerOS.ttf
km | KhmerOSBattambang.ttf          | Khmer OS Battambang  | fonts-khmeros                | LGPL-2.1+ | truetype/khmeros/KhmerOSbattambang.ttf
km | KhmerOSFreehand.ttf            | Khmer OS Freehand    | fonts-khmeros                | LGPL-2.1+ | truetype/khmeros/KhmerOSfreehand.ttf
km | KhmerOSMuolLight.ttf           | Khmer OS Muol Light  | fonts-khmeros                | LGPL-2.1+ | truetype/khmeros/KhmerOSmuollight.ttf
km | KhmerOSMetalChrieng.ttf        | Khmer OS Metal Chrieng | fonts-khmeros              | LGPL-2.1+ | truetype/khmeros/KhmerOSmetalchrieng.ttf
km | KhmerOSBokor.ttf               | Khmer OS Bokor       | fonts-khmeros                | LGPL-2.1+ | truetype/khmeros/KhmerOSbokor.ttf
km | NotoSansKhmer-Regular.ttf      | Noto Sans Khmer      | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansKhmer-Regular.ttf
zh | NotoSansCJKsc-Regular.otf      | Noto Sans CJK SC     | fonts-noto-cjk               | OFL-1.1 | opentype/noto/NotoSansCJK-Regular.ttc#2
zh | NotoSansCJKsc-Bold.otf         | Noto Sans CJK SC     | fonts-noto-cjk               | OFL-1.1 | opentype/noto/NotoSansCJK-Bold.ttc#2
zh | NotoSerifCJKsc-Regular.otf     | Noto Serif CJK SC    | fonts-noto-cjk               | OFL-1.1 | opentype/noto/NotoSerifCJK-Regular.ttc#2
zh | ARPLUMingCN.ttf                | AR PL UMing CN       | fonts-arphic-uming           | Arphic Public License | truetype/arphic/uming.ttc#0
zh | WenQuanYiZenHei.ttf            | WenQuanYi Zen Hei    | fonts-wqy-zenhei             | GPL-2.0 with font embedding exception | truetype/wqy/wqy-zenhei.ttc#0
zh | KleeOne-Regular.ttf            | Klee One             | fonts-klee                   | OFL-1.1 | truetype/klee/KleeOne-Regular.ttf
zh | setofont.ttf                   | Seto Font            | fonts-seto                   | OFL-1.1 | truetype/seto/setofont.ttf
zh | NotoSerifCJKsc-Bold.otf        | Noto Serif CJK SC    | fonts-noto-cjk               | OFL-1.1 | opentype/noto/NotoSerifCJK-Bold.ttc#2
zh | WenQuanYiMicroHei.ttf          | WenQuanYi Micro Hei  | fonts-wqy-microhei           | Apache-2.0 or GPL-3.0+ with font exception | truetype/wqy/wqy-microhei.ttc#0
zh | MMCedar.ttf                    | MMCedar              | fonts-mmcedar                | Apache-2.0 and M+FONTS | truetype/mmcedar/MMCedar.ttf
zh | KaishuDigits-Bold.ttf          | Kaishu Digits        | fonts-lxgw-wenkai            | OFL-1.1 | truetype/lxgw-wenkai/LXGWWenKai-Bold.ttf | Kaishu Digits
zh | ARPLUKaiCN.ttf                 | AR PL UKai CN        | fonts-arphic-ukai            | Arphic Public License | truetype/arphic/ukai.ttc#0
mn | ManchuGroupDigits.ttf          | ManchuGroup Digits   | fonts-manchufont             | OFL-1.1 | truetype/manchufont/ManchuFont.ttf | ManchuGroup Digits
mn | NotoSansMongolian-Regular.ttf  | Noto Sans Mongolian  | fonts-noto-core              | OFL-1.1 | truetype/noto/NotoSansMongolian-Regular.ttf
"""


@dataclass(frozen=True)
class FontSource:
    """One bundled subset and the installed font it is cut from."""

    lang: str
    file: str
    family: str
    package: str
    licence: str
    path: Path
    index: int = 0
    rename: str | None = None

    @property
    def asset(self) -> str:
        """Path relative to the fonts directory, as the language configs list it."""
        return f"{self.lang}/{self.file}"

    @property
    def licence_file(self) -> str:
        return f"LICENSES/{self.family.replace(' ', '')}.txt"


def parse_sources(table: str = SOURCE_TABLE) -> list[FontSource]:
    """The rows of SOURCE_TABLE as FontSource records."""
    sources = []
    for line in table.strip().splitlines():
        lang, file, family, package, licence, where, *rename = (c.strip() for c in line.split("|"))
        path, _, index = where.partition("#")
        sources.append(
            FontSource(
                lang=lang,
                file=file,
                family=family,
                package=package,
                licence=licence,
                path=SYSTEM_FONTS / path,
                index=int(index or 0),
                rename=rename[0] if rename else None,
            )
        )
    return sources


def language_glyphs(language: Language) -> list[tuple[int, str]]:
    """Every (class, character) a font of `language` must draw."""
    return [
        (label, char) for label in range(language.num_classes) for char in language.glyphs(label)
    ]


def _outline(font: TTFont, glyph_name: str) -> tuple:
    pen = RecordingPen()
    font.getGlyphSet()[glyph_name].draw(pen)
    return tuple(pen.value)


def _has_ink(font: TTFont, glyph_name: str) -> bool:
    pen = BoundsPen(font.getGlyphSet())
    font.getGlyphSet()[glyph_name].draw(pen)
    return pen.bounds is not None


def check_source(source: FontSource, font: TTFont, language: Language) -> list[str]:
    """Problems with the source font's digits: missing, empty, Latin stand-ins or duplicates.

    Some fonts list a script's digits in their cmap but map them to empty glyphs or to the
    ASCII digits' drawings; those would silently teach a model the wrong shapes.
    """
    cmap = font.getBestCmap()
    latin = {_outline(font, cmap[c]) for c in range(0x30, 0x3A) if c in cmap}
    problems, outlines = [], {}
    for label, char in language_glyphs(language):
        where = f"{source.path}: class {label} {char!r} (U+{ord(char):04X})"
        if ord(char) not in cmap:
            problems.append(f"{where} is not in the cmap")
            continue
        name = cmap[ord(char)]
        if not _has_ink(font, name):
            problems.append(f"{where} maps to the empty glyph {name!r}")
            continue
        outline = _outline(font, name)
        if language.code != "en" and outline in latin:
            problems.append(f"{where} is drawn as a Latin digit")
        for other_label, other in outlines.items():
            if other_label != label and other == outline:
                problems.append(f"{where} has the same outline as class {other_label}")
        outlines.setdefault(label, outline)
    return problems


def subset_options() -> subset.Options:
    """Keep the digits' outlines, names and licence; drop hinting and layout."""
    options = subset.Options()
    options.layout_features = []
    options.hinting = False
    options.desubroutinize = True
    options.name_IDs = KEPT_NAME_IDS
    options.name_languages = [0x0409]
    options.name_legacy = False
    options.notdef_outline = True
    options.glyph_names = False
    options.recalc_timestamp = False
    options.drop_tables = sorted(set(options.drop_tables) | set(DROPPED_TABLES))
    return options


def rename_family(font: TTFont, family: str) -> None:
    """Give the subset a new family name, as the OFL asks where the original name is reserved."""
    if "glyf" not in font:
        raise ValueError(f"renaming is only implemented for TrueType outlines, not {family!r}")
    names = font["name"]
    style = names.getDebugName(2) or "Regular"
    full = family if style == "Regular" else f"{family} {style}"
    for name_id in (1, 4, 6, 16, 17):
        names.removeNames(nameID=name_id)
    names.setName(family, 1, 3, 1, 0x0409)
    names.setName(full, 4, 3, 1, 0x0409)
    names.setName(f"{family.replace(' ', '')}-{style.replace(' ', '')}", 6, 3, 1, 0x0409)


def build_subset(source: FontSource, language: Language) -> bytes:
    """The digit-only font for `source`, as bytes; raises if the source's digits are unusable."""
    font = TTFont(source.path, fontNumber=source.index, recalcTimestamp=False, lazy=True)
    if "fvar" in font:
        raise ValueError(f"{source.path}: variable fonts are not supported")
    problems = check_source(source, font, language)
    if problems:
        raise ValueError("\n".join(problems))
    subsetter = subset.Subsetter(subset_options())
    subsetter.populate(text="".join(char for _, char in language_glyphs(language)))
    subsetter.subset(font)
    if source.rename:
        rename_family(font, source.rename)
    buffer = io.BytesIO()
    font.save(buffer, reorderTables=True)
    return buffer.getvalue()


def rendering_problems(path: Path, source: FontSource, language: Language) -> list[str]:
    """Glyphs of the written subset that render like .notdef or like another class."""
    try:
        notdef = master_image(path, NOTDEF_PROBE)
    except ValueError:  # an empty .notdef: any ink differs from it
        notdef = None
    images = {(label, char): master_image(path, char) for label, char in language_glyphs(language)}
    problems = []
    for (label, char), image in images.items():
        if notdef is not None and np.abs(image - notdef).mean() < MIN_GLYPH_DIFFERENCE:
            problems.append(f"{source.asset}: class {label} {char!r} renders as .notdef")
    for ((a, char_a), image_a), ((b, char_b), image_b) in combinations(images.items(), 2):
        if a != b and np.abs(image_a - image_b).mean() < MIN_GLYPH_DIFFERENCE:
            problems.append(f"{source.asset}: classes {a} {char_a!r} and {b} {char_b!r} look alike")
    return problems


def _common_licences(text: str) -> set[str]:
    names = re.findall(r"/usr/share/common-licenses/([A-Za-z0-9.+-]+)", text)
    return {name.rstrip(".") for name in names if (COMMON_LICENSES / name.rstrip(".")).is_file()}


def licence_files(sources: Iterable[FontSource]) -> dict[str, str]:
    """LICENSES/<Family>.txt per family (the package's Debian copyright file) and common texts."""
    files, common = {}, set()
    for source in sources:
        copyright_path = DEBIAN_DOCS / source.package / "copyright"
        text = copyright_path.read_text(encoding="utf-8", errors="replace")
        common |= _common_licences(text)
        header = (
            f"{source.family}: copyright and licence ({source.licence}) as recorded by the Debian\n"
            f"package {source.package} in {copyright_path}.\n"
            "Licences that it cites as /usr/share/common-licenses/<NAME> are in common/<NAME>.txt.\n"
        )
        if source.rename:
            header += (
                f"The bundled subset is a modified version renamed to {source.rename!r}, as the\n"
                "Reserved Font Name clause of the SIL Open Font License requires.\n"
            )
        files[source.licence_file] = f"{header}\n{'=' * 72}\n\n{text}"
    for name in sorted(common):
        text = (COMMON_LICENSES / name).read_text(encoding="utf-8", errors="replace")
        files[f"LICENSES/common/{name}.txt"] = text
    return files


def readme(sources: list[FontSource], roles: dict[str, str]) -> str:
    """The asset README: one row per bundled font."""
    rows = [
        f"| {s.lang} | `{s.asset}` | {roles[s.asset]} | {s.family} | {s.package} | {s.licence} "
        f"| [{s.licence_file}]({s.licence_file}) |"
        for s in sources
    ]
    renamed = [
        f"- `{s.asset}` is cut from `{s.path.name}` ({s.package}); its family is renamed to "
        f"{s.rename!r} because the OFL reserves the original name."
        for s in sources
        if s.rename
    ]
    return "\n".join(
        [
            "# Bundled digit fonts",
            "",
            "Digit-only subsets of freely licensed fonts, one folder per language. Each file keeps",
            "only the glyphs of that language's ten digits (and extra glyphs, such as 〇 for",
            "Chinese zero), its copyright and licence names, and no hinting or layout tables, so",
            "every renderer draws the same default glyph. They are made from Debian font packages",
            f"by `tools/build_fonts.py` (fontTools {fontTools.version}); run it with `--check` to",
            "verify that the committed files are reproduced byte for byte.",
            "",
            "`LICENSES/<Family>.txt` is the Debian copyright file of the font's package, with its",
            "licence text; licences it cites from `/usr/share/common-licenses` are in",
            "`LICENSES/common/`. The role says how `conf/language/<code>.yaml` uses the font:",
            "`train` fonts make the training glyphs, the `test` font is the held-out style.",
            "",
            *renamed,
            *([""] if renamed else []),
            "| Language | File | Role | Family | Debian package | Licence | Licence text |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def font_roles() -> dict[str, str]:
    """Asset path -> "train" or "test", from the language configs."""
    roles = {}
    for code in available_languages():
        language = load_language(code)
        roles.update({f: "train" for f in language.train_fonts})
        roles.update({f: "test" for f in language.test_fonts})
    return roles


def build(sources: list[FontSource], out_dir: Path) -> list[str]:
    """Write every subset, licence and the README under `out_dir`; return the problems found."""
    roles = font_roles()
    listed = {s.asset for s in sources}
    by_family: dict[str, set[tuple]] = {}
    for s in sources:
        by_family.setdefault(s.family, set()).add((s.package, s.licence, s.rename))
    problems = [
        f"family {f!r} has several packages or licences: {v}"
        for f, v in by_family.items()
        if len(v) > 1
    ]
    problems += [
        f"{a}: listed by a language config but not in SOURCE_TABLE" for a in roles.keys() - listed
    ]
    problems += [f"{a}: in SOURCE_TABLE but in no language config" for a in listed - roles.keys()]
    if problems:
        return problems
    for source in sources:
        target = out_dir / source.asset
        target.parent.mkdir(parents=True, exist_ok=True)
        language = load_language(source.lang)
        try:
            target.write_bytes(build_subset(source, language))
        except (OSError, ValueError) as err:
            problems.append(str(err))
            continue
        problems += rendering_problems(target, source, language)
    for name, text in licence_files(sources).items():
        (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (out_dir / name).write_text(text, encoding="utf-8")
    (out_dir / "README.md").write_text(readme(sources, roles), encoding="utf-8")
    return problems


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def sync_tree(built: dict[str, bytes], root: Path, check: bool) -> list[str]:
    """With `check`, print and return the files of `root` that differ from `built`; otherwise
    make `root` hold exactly `built` (and return nothing)."""
    committed = _tree(root) if root.is_dir() else {}
    if check:
        differ = sorted(
            k for k in built.keys() | committed.keys() if built.get(k) != committed.get(k)
        )
        for name in differ:
            print(f"differs from a fresh build: {root / name}", file=sys.stderr)
        return differ
    for name in committed.keys() - built.keys():
        (root / name).unlink()
    for name, data in built.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return []


def main(argv: list[str] | None = None) -> int:
    """Rebuild the bundled fonts, or with --check compare a fresh build with the committed one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    sources = parse_sources()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        problems = build(sources, fresh)
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 1
        built = _tree(fresh)
        if args.check:
            return 1 if sync_tree(built, FONTS_DIR, check=True) else 0
        sync_tree(built, FONTS_DIR, check=False)
    total = sum(len(data) for data in built.values())
    print(f"{len(sources)} fonts, {total / 1e6:.2f} MB in {FONTS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
