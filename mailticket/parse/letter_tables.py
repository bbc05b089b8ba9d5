"""What ordinary writing is made of, for telling a text from mojibake (data, pure).

Frequent characters and syllables of Chinese, Japanese and Korean; the alphabets of the
languages written in the single-byte charsets mail uses; vowels. The Chinese, Japanese
and Korean tables are built from the national standards' own code tables (their first
levels are the everyday characters), on first use; the short lists here add frequency
within them: the characters of everyday and support mail, common family and given names.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from charset_normalizer.constant import FREQUENCIES

# The most frequent simplified characters, the words of support mail, names.
_TOP_SIMPLIFIED: Final = (
    "的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下"
    "自之年过发后作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部"
    "其些主样理心她本前开但因只从想实日军者意无力它与长把机十民第公此已工使情明性知全三又"
    "关点正业外将两高间由问很最重并物手应战向头文体政美相见被利什二等产或新己制身果加西斯"
    "月话合回特代内信表化老给世位次度门任常先海通教儿原东声提立及比员解水名真论处走义各入"
    "几口认条平系气题活尔更别打女变四神总何电数安少报才结反受目太量再感建务做接必场件计管"
    "期市直德资命山金指克许统区保至队形社便空决治展马科司五基眼书非则听白却界达光放强即像"
    "难且权思王象完设式色路记南品住告类求据程北边死张该交规万取拉格望觉术领共确传师观清今"
    "切院让识候带导争运笑飞风步改收根干造言联持组每济车亲极林服快办议往元英士证近失转夫令"
    "准布始怎呢存未远叫台单影具罗字爱击流备兵连调深商算质团集百需价花党华城石级整府离况亚"
    "请技际约示复病息究线似官火断精满支视消越器容照须九增研写称企八功吗包片史委乎查轻易早"
    "曾除农找装广显吧阿李标谢您账户登录密码订货款退换邮附客网站错误帮助付票购买申尽询售维"
    "修故障版软硬测试慢败闭删添醒周末祝敬礼紧急址号麻烦帐注册验链载图截屏幕浏览脑余额充值"
    "递签投诉馈钟优惠积编辑搜索详页审核拒驳状态预钱"
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢"
    "蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟"
    "龙万段雷钱汤尹黎易常武乔贺赖龚文伟芳娜洋静磊敏勇杰昊婷浩超丽军靖欣峰晨斌明华强平红玲"
    "燕霞秀英兰梅琳颖佳慧俊涛宇鹏辉刚健波宁飞翔雪倩晶莉凤洁琴云艳娟艺志"
)
# Their traditional forms (Big5, Hong Kong, Taiwan) where those differ.
_TOP_TRADITIONAL: Final = (
    "這個們來為國說時會對著過發經學現當沒動還進樣開從實軍無長關點業將兩間問應戰頭見產話內給"
    "門東聲員論處義認條題爾別變總電數報結務場計資許統區隊決馬書則卻達強難權設記類邊張該規覺"
    "術領傳師觀讓識帶導爭運飛風聯組濟車親辦議證轉遠單羅愛擊備連調質團華級況亞請際約線斷滿視"
    "須寫稱嗎輕農裝廣顯標謝賬戶錄碼訂貨換郵錯誤幫購買盡詢維軟測試敗閉刪禮緊號監煩帳冊驗鏈載"
    "圖瀏覽腦額遞簽訴饋鐘協積編輯詳頁審絕駁狀態預錢體機麼於後裡幾與萬準價餘範製臺隻幹係復極"
    "兒氣網聽並劉陳楊趙黃吳孫羅鄭謝韓馮蕭鄧蘇盧蔣賈葉閻鍾譚鄒陸龍湯賀賴龔偉麗靜傑強紅蘭穎"
    "濤鵬輝剛寧飛鳳潔雲艷藝"
)
# Korean: the most frequent syllables, family and given names.
_TOP_HANGUL: Final = (
    "이다에의는로하을가고지서한은기으년대사시를리도인스일니습세요안녕문제해주있어것수게정보"
    "내드립합께상전자부나위여오우아회원경장적성면되들무그진화만동말까비마계개연조신공실관업"
    "명소과분저때거및등모감구라확탁메발송처결배취환불변청접답담당객센터비밀번호용방법김박최"
    "강윤임권황송류홍손백허남심노곽차민유엄채천현함염추석선설길표왕금옥육맹탁국어편영희준"
    "혜훈철태테트버쿠키컴퓨터프크블"
)
# Letters beyond ASCII of each language written in a single-byte charset.
ALPHABETS: Final = (
    "äöüß",  # German
    "àâæçéèêëîïôœùûüÿ",  # French
    "áéíñóúü",  # Spanish
    "áâãàçéêíóôõú",  # Portuguese
    "àèéìíîòóù",  # Italian
    "éëïóöü",  # Dutch
    "åäöšž",  # Swedish, Finnish
    "æøåé",  # Danish, Norwegian
    "áðéíóúýþæö",  # Icelandic
    "ąćęłńóśźż",  # Polish
    "áčďéěíňóřšťúůýž",  # Czech
    "áäčďéíĺľňóôŕšťúýž",  # Slovak
    "áéíóöőúüű",  # Hungarian
    "ăâîșțşţ",  # Romanian
    "çğıöşü",  # Turkish
    "čćđšž",  # Croatian, Slovene, Bosnian
    "ąčęėįšųūž",  # Lithuanian
    "āčēģīķļņšūž",  # Latvian
    "äõöüšž",  # Estonian
    "àçèéíïòóúü",  # Catalan
    "çë",  # Albanian
)
VOWELS: Final = frozenset(
    "aeiouyàáâãäåæèéêëìíîïòóôõöøùúûüýÿœąęėįųůěőűăāēīūаеёиоуыэюяіїєўαεηιουωάέήίόύώϊϋΐΰ"
)


@functools.cache
def letter_ranks() -> dict[str, int]:
    """Each letter's best rank (0 = most frequent) in any language charset-normalizer knows."""
    ranks: dict[str, int] = {}
    for letters in FREQUENCIES.values():
        for rank, letter in enumerate(letters):
            ranks[letter] = min(rank, ranks.get(letter, rank))
    return ranks


@functools.cache
def latin_alphabets() -> tuple[frozenset[str], ...]:
    """The non-ASCII letters of each Latin alphabet, lower case."""
    return tuple(frozenset(letters) for letters in ALPHABETS)


@dataclass(frozen=True, slots=True)
class CjkTables:
    top: frozenset[str]  # the most frequent ideographs
    level1: frozenset[str]  # everyday ideographs of GB 2312, Big5 and JIS X 0208
    level2: frozenset[str]  # their second levels
    simplified_only: frozenset[str]  # in GB 2312, in neither Big5 nor JIS X 0208
    traditional_only: frozenset[str]  # in Big5, in neither GB 2312 nor JIS X 0208
    top_hangul: frozenset[str]
    hangul: frozenset[str]  # the 2,350 syllables of KS X 1001


@functools.cache
def cjk_tables() -> CjkTables:
    """Built from the national standards' code tables, once, on first use (~0.1 s)."""
    high = range(0xA1, 0xFF)
    big5_trail = [*range(0x40, 0x7F), *high]
    gb1 = _row_chars("gb2312", range(0xB0, 0xD8), high)
    gb2 = _row_chars("gb2312", range(0xD8, 0xF8), high)
    big1 = _row_chars("cp950", range(0xA4, 0xC7), big5_trail)
    big2 = _row_chars("cp950", range(0xC9, 0xFA), big5_trail)
    jis1 = _row_chars("euc_jp", range(0xB0, 0xD0), high)
    jis2 = _row_chars("euc_jp", range(0xD0, 0xF5), high)
    frequent = (char for name in ("Chinese", "Japanese") for char in FREQUENCIES[name])
    return CjkTables(
        top=frozenset(_TOP_SIMPLIFIED + _TOP_TRADITIONAL) | frozenset(frequent),
        level1=gb1 | big1 | jis1,
        level2=gb2 | big2 | jis2,
        simplified_only=(gb1 | gb2) - (big1 | big2) - (jis1 | jis2),
        traditional_only=(big1 | big2) - (gb1 | gb2) - (jis1 | jis2),
        top_hangul=frozenset(_TOP_HANGUL) | frozenset(FREQUENCIES["Korean"]),
        hangul=_row_chars("euc_kr", range(0xB0, 0xC9), high),
    )


def _row_chars(codec: str, leads: range, trails: Sequence[int]) -> frozenset[str]:
    """Every character a double-byte codec maps the given lead and trail bytes to."""
    found: set[str] = set()
    for lead in leads:
        for trail in trails:
            try:
                found.add(bytes((lead, trail)).decode(codec))
            except UnicodeDecodeError:
                continue
    return frozenset(found)
