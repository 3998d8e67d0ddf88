"""An XMP packet being edited: phototag's keywords, keyword paths and face regions in it, and nothing else.

One document type serves the sidecar file and the packet embedded in a JPEG or WebP. The user's XML
is edited in place with lxml: namespace prefixes stay those of the document (no process-wide prefix
registry), whitespace, comments and other namespaces are kept, and only the elements phototag adds
get indentation of their own.

What phototag writes, and how it marks it so ``remove_own`` takes exactly that out again:

* values added to the bags ``dc:subject``, ``lr:hierarchicalSubject`` and ``digiKam:TagsList`` are
  listed in ``phototag:Keywords``, ``phototag:Hierarchy`` and ``phototag:TagsList``;
* its face regions (MWG Guidelines 2.0, section 5.9: type ``Face``, ``stArea`` x/y the *centre* of the
  box, w/h its size, normalised to the image **as stored**, ``AppliedToDimensions`` the stored pixel
  size) carry ``mwg-rs:Extensions`` with properties in the phototag namespace, and an ``mwg-rs:Name``
  only where the user named the face's person (``phototag people name``: a name phototag guessed
  would create fake people in photo managers);
* new properties go into an ``rdf:Description`` of phototag's own, removed again when it empties.

A packet too large for one JPEG segment is split as XMP Part 3 (1.1.3.1) describes: its face
regions (the whole ``mwg-rs:Regions`` property) go to an *extended* packet, which the main one names
by the MD5 digest of its bytes in ``xmpNote:HasExtendedXMP`` (in phototag's description: that is how
phototag knows the extended packet is its own to merge back and rewrite).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from lxml import etree

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "lr": "http://ns.adobe.com/lightroom/1.0/",
    "digiKam": "http://www.digikam.org/ns/1.0/",
    "mwg-rs": "http://www.metadataworkinggroup.com/schemas/regions/",
    "stArea": "http://ns.adobe.com/xmp/sType/Area#",
    "stDim": "http://ns.adobe.com/xap/1.0/sType/Dimensions#",
    "xmpNote": "http://ns.adobe.com/xmp/note/",
    "phototag": "http://ns.phototag.invalid/1.0/",
}
PHOTOTAG_NS = NS["phototag"]
PACKET_BEGIN = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
PACKET_END = '\n<?xpacket end="w"?>'
_ARRAYS = ("Bag", "Seq", "Alt")
_INDENT = " "


def _q(name: str) -> str:
    """``"rdf:li"`` -> ``"{http://...}li"``."""
    prefix, local = name.split(":")
    return f"{{{NS[prefix]}}}{local}"


RDF, DESCRIPTION, LI, ABOUT, PARSE_TYPE = (_q(n) for n in (
    "rdf:RDF", "rdf:Description", "rdf:li", "rdf:about", "rdf:parseType"))
REGIONS, REGION_LIST, APPLIED_TO, HAS_EXTENDED = (_q(n) for n in (
    "mwg-rs:Regions", "mwg-rs:RegionList", "mwg-rs:AppliedToDimensions", "xmpNote:HasExtendedXMP"))
SUBJECT, HIERARCHY, TAGS_LIST = "dc:subject", "lr:hierarchicalSubject", "digiKam:TagsList"
OWN_MARKERS = {SUBJECT: "phototag:Keywords", HIERARCHY: "phototag:Hierarchy", TAGS_LIST: "phototag:TagsList"}


@dataclass
class Region:
    """One face region: centre and size normalised to the stored image, plus phototag's data."""

    x: float
    y: float
    w: float
    h: float
    description: str
    extensions: dict[str, str] = field(default_factory=dict)  # local name -> value, phototag namespace
    name: str | None = None  # the person's name, where the user gave one (mwg-rs:Name)


class NotXmp(ValueError):
    """The data is not an XMP document phototag can edit safely."""


class Packet:
    """An XMP document being edited in memory (``data`` None: a new, empty one)."""

    _added_rdf = False  # the packet had no rdf:RDF: the one added is left out again while it is empty

    def __init__(self, data: bytes | None = None):
        if data and data.strip(b"\0 \t\r\n"):
            try:
                parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False)
                self.root = etree.fromstring(data.rstrip(b"\0"), parser)
            except etree.XMLSyntaxError as error:
                raise NotXmp(f"not valid XML: {error}") from error
            docinfo = self.root.getroottree().docinfo
            if docinfo.internalDTD is not None or docinfo.doctype:
                raise NotXmp("the XMP packet has a DOCTYPE, which XMP forbids (ISO 16684-1); "
                             "phototag leaves it as it is")
            self.rdf = self.root if self.root.tag == RDF else self.root.find(f".//{RDF}")
            if self.rdf is None and self.root.tag == _q("x:xmpmeta"):  # an empty packet: x:xmpmeta alone
                self.rdf = etree.SubElement(self.root, RDF)
                self._added_rdf = True
            if self.rdf is None:
                raise NotXmp("no rdf:RDF element")
        else:
            self.root = etree.Element(_q("x:xmpmeta"), {_q("x:xmptk"): "phototag"},
                                      nsmap={"x": NS["x"], "rdf": NS["rdf"]})
            self.rdf = _add(self.root, "rdf:RDF")

    # -- bags of keywords -----------------------------------------------------------------------

    def items(self, name: str) -> list[str] | None:
        """The values of a bag property (``SUBJECT``, ``HIERARCHY``, ``TAGS_LIST``); None when absent."""
        element = self._property(_q(name))
        return None if element is None else _items(element)

    def own(self, name: str) -> list[str]:
        """The values phototag added to a bag property."""
        return self.items(OWN_MARKERS[name]) or []

    def replace_own(self, name: str, added: list[str]) -> list[str]:
        """Take phototag's earlier values out of a bag property, append ``added``; returns those removed."""
        previous = self.own(name)
        element = self._property(_q(name))
        removed = _remove_items(element, previous) if element is not None else []
        if added:
            if element is None:
                element = _add(self._own_description(), name)
            _append_items(element, added)
        if element is not None and not _items(element):
            _drop(element)
        self._set_bag(OWN_MARKERS[name], added)
        return removed

    # -- regions --------------------------------------------------------------------------------

    def replace_own_regions(self, regions: list[Region], stored_size: tuple[int, int]) -> int:
        """Swap phototag's face regions for ``regions`` (other tools' regions stay); returns how many went."""
        holder = self._property(REGIONS)
        removed = 0
        if holder is not None:
            fields = _struct_fields(holder)
            region_list = fields.find(REGION_LIST)
            if region_list is not None:
                bag = _container(region_list)
                for li in [li for li in bag.findall(LI) if _is_own(li)]:
                    _drop(li)
                    removed += 1
                if not bag.findall(LI) and not regions:
                    _drop(region_list)
            if not regions and all(child.tag == APPLIED_TO for child in fields):
                _drop(holder)
                return removed
        if regions:
            if holder is None:
                holder = _add(self._own_description(), "mwg-rs:Regions", {PARSE_TYPE: "Resource"})
            fields = _struct_fields(holder)
            if fields.find(APPLIED_TO) is None:
                _add_dimensions(fields, stored_size)
            region_list = fields.find(REGION_LIST)
            if region_list is None:
                region_list = _add(fields, "mwg-rs:RegionList")
            bag = _container(region_list)
            for region in regions:
                _add_region(bag, region)
        return removed

    # -- phototag's own properties --------------------------------------------------------------

    def property(self, name: str) -> str | None:
        """A simple property in the phototag namespace, or None."""
        element = self._property(_q(f"phototag:{name}"))
        return None if element is None else element.text

    def set_properties(self, values: dict[str, str]) -> None:
        """Set simple properties in the phototag namespace."""
        for name, value in values.items():
            element = self._property(_q(f"phototag:{name}"))
            if element is None:
                element = _add(self._own_description(), f"phototag:{name}")
            element.text = value

    def record(self) -> dict | None:
        """phototag's JSON record (``phototag:Record``), where it is kept when not in the EXIF."""
        text = self.property("Record")
        try:
            record = json.loads(text) if text else None
        except (ValueError, RecursionError):
            return None
        return record if isinstance(record, dict) else None

    def set_record(self, record: dict | None) -> None:
        """Put phototag's JSON record in the packet (None: take it out)."""
        if record is not None:
            self.set_properties({"Record": json.dumps(record, ensure_ascii=True, separators=(",", ":"))})
        elif (element := self._property(_q("phototag:Record"))) is not None:
            _drop(element)

    def created_by_phototag(self) -> bool:
        """Whether phototag created this packet (its toolkit attribute says so): ``clean`` deletes it
        when it empties, and keeps any other, a user's empty packet included."""
        return self.root.get(_q("x:xmptk")) == "phototag"

    def remove_own(self) -> tuple[list[str], int]:
        """Remove everything phototag wrote; returns (keywords taken out of dc:subject, regions removed)."""
        keywords = self.replace_own(SUBJECT, [])
        for name in (HIERARCHY, TAGS_LIST):
            self.replace_own(name, [])
        regions = self.replace_own_regions([], (0, 0))
        for description in self.rdf.findall(DESCRIPTION):
            own = _is_own_description(description)
            for child in [c for c in description if _in_own_ns(c.tag)]:
                _drop(child)
            for name in [a for a in description.attrib if _in_own_ns(a)]:
                del description.attrib[name]
            if own and not len(description):
                _drop(description)
        if not len(self.rdf) and self.rdf.getparent() is self.root and self.root.tag == _q("x:xmpmeta"):
            self._added_rdf = True  # a packet that had no rdf:RDF before phototag's write (left out)
        return keywords, regions

    def is_empty(self) -> bool:
        """True when no description holds any property (the document carries nothing)."""
        for child in self.rdf:
            if child.tag != DESCRIPTION or len(child) or set(child.attrib) - {ABOUT}:
                return False
        return True

    def to_bytes(self) -> bytes:
        """The document as an XMP packet (UTF-8), with the comments and processing instructions around
        ``x:xmpmeta`` (other than the packet wrapper); checked to parse back (raises ``NotXmp``)."""
        before = [n for n in self.root.itersiblings(preceding=True) if not _is_xpacket(n)][::-1]
        after = [n for n in self.root.itersiblings() if not _is_xpacket(n)]
        empty = self._added_rdf and not len(self.rdf) and self.rdf.getparent() is self.root
        if empty:
            self.root.remove(self.rdf)
        try:
            parts = [etree.tostring(n, encoding="unicode", with_tail=False) for n in (*before, self.root, *after)]
        finally:
            if empty:
                self.root.append(self.rdf)
        data = (PACKET_BEGIN + "\n".join(parts) + PACKET_END).encode()
        Packet(data)
        return data

    # -- extended XMP (JPEG) ----------------------------------------------------------------------

    def extended_guid(self) -> tuple[str | None, bool]:
        """(the GUID ``xmpNote:HasExtendedXMP`` names, or None; whether phototag wrote it)."""
        element = self._property(HAS_EXTENDED)
        if element is None:
            return None, False
        return (element.text or "").strip(), _is_own_description(element.getparent())

    def merge_extended(self, data: bytes) -> None:
        """Take phototag's extended packet back into this one."""
        element = self._property(HAS_EXTENDED)
        if element is not None:
            _drop(element)
        for description in Packet(data).rdf.findall(DESCRIPTION):
            for prop in list(description):
                if isinstance(prop.tag, str) and self._property(prop.tag) is None:
                    own = self._own_description()
                    own.append(prop)
                    _place(prop)

    def split(self, limit: int) -> tuple[bytes, bytes | None]:
        """(the main packet, an extended packet or None): when the packet is over ``limit`` bytes, its
        ``mwg-rs:Regions`` go to an extended packet; ``NotXmp`` when the main one is still too large."""
        data = self.to_bytes()
        regions = self._property(REGIONS)
        if len(data) <= limit:
            return data, None
        if regions is None or self.extended_guid()[0] is not None:
            raise NotXmp(f"the XMP packet would be {len(data)} bytes, over the 64 KiB one JPEG APP1 segment "
                         f"holds ({limit} bytes)")
        extended = etree.Element(_q("x:xmpmeta"), nsmap={"x": NS["x"]})
        rdf = _add(extended, "rdf:RDF")
        holder = _add(rdf, "rdf:Description", {ABOUT: self._about()})
        _drop(regions)
        holder.append(regions)
        _place(regions)
        extended_data = etree.tostring(extended, encoding="unicode").encode()
        Packet(extended_data)
        _add(self._own_description(), "xmpNote:HasExtendedXMP", text=extended_guid(extended_data))
        data = self.to_bytes()
        if len(data) > limit:
            raise NotXmp(f"the XMP packet would be {len(data)} bytes without its face regions, over the 64 KiB "
                         f"one JPEG APP1 segment holds ({limit} bytes)")
        return data, extended_data

    # -- helpers --------------------------------------------------------------------------------

    def _own_description(self) -> etree._Element:
        """phototag's rdf:Description (created on first use, declaring the namespaces not yet in scope)."""
        for description in self.rdf.findall(DESCRIPTION):
            if _is_own_description(description):
                return description
        scope = self.rdf.nsmap
        nsmap = {p: uri for p, uri in NS.items() if p not in ("x", "rdf") and uri not in scope.values()}
        nsmap = {(p if p not in scope else f"{p}-pt"): uri for p, uri in nsmap.items()}
        description = etree.SubElement(self.rdf, DESCRIPTION, {ABOUT: self._about(), _q("phototag:Own"): "1"},
                                       nsmap=nsmap)
        _place(description)
        return description

    def _about(self) -> str:
        """The packet's rdf:about (every description must say the same): the user's, else ""."""
        return next((d.get(ABOUT) for d in self.rdf.findall(DESCRIPTION) if d.get(ABOUT)), "")

    def _property(self, tag: str) -> etree._Element | None:
        for description in self.rdf.findall(DESCRIPTION):
            element = description.find(tag)
            if element is not None:
                return element
        return None

    def _set_bag(self, name: str, values: list[str]) -> None:
        element = self._property(_q(name))
        if element is not None and _items(element) == values:
            return
        if element is not None:
            _drop(element) if not values else _remove_items(element, _items(element))
        elif values:
            element = _add(self._own_description(), name)
        if values:
            _append_items(element, values)


def extended_guid(extended: bytes) -> str:
    """The GUID naming an extended packet: the MD5 digest of its bytes, 32 upper-case hex digits."""
    return hashlib.md5(extended).hexdigest().upper()


def _is_xpacket(node) -> bool:
    return isinstance(node, etree._ProcessingInstruction) and node.target == "xpacket"


def _is_own_description(description: etree._Element) -> bool:
    return description.get(_q("phototag:Own")) is not None


def _add(parent: etree._Element, name: str, attrib: dict | None = None, text: str | None = None,
         declare: tuple[str, ...] = ()) -> etree._Element:
    """Append a new ``prefix:local`` element, declaring its namespace (and those of ``declare``) only
    when not in scope, under the preferred prefix unless the document uses that for something else."""
    prefix, local = name.split(":")
    scope = parent.nsmap
    nsmap = {}
    for p in (prefix, *declare):
        if NS[p] not in scope.values():
            nsmap[p if p not in scope else f"{p}-pt"] = NS[p]
    element = etree.SubElement(parent, f"{{{NS[prefix]}}}{local}", attrib or {}, nsmap=nsmap or None)
    element.text = text
    _place(element)
    return element


def _place(element: etree._Element) -> None:
    """Lay out a just-appended element like its siblings (or one indentation step inside its parent),
    leaving the parent's closing line as it was."""
    parent = element.getparent()
    previous = element.getprevious()
    if previous is not None:
        element.tail = previous.tail
        previous.tail = parent.text if _blank(parent.text) else "\n" + _indent_of(previous)
    else:
        base = _indent_of(parent)
        element.tail = parent.text if _blank(parent.text) else "\n" + base
        parent.text = "\n" + base + _unit(parent.getroottree().getroot())


def _drop(element: etree._Element) -> None:
    """Remove an element, leaving its parent's whitespace as it was before ``_place`` put it there."""
    parent = element.getparent()
    if element.getnext() is None:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = element.tail
        else:
            parent.text = None if element.tail == "\n" + _indent_of(parent) else element.tail
    parent.remove(element)


def _blank(text: str | None) -> bool:
    return text is not None and "\n" in text and not text.strip()


def _indent_of(element: etree._Element) -> str:
    """The whitespace in front of an element's start tag on its line."""
    previous, parent = element.getprevious(), element.getparent()
    before = previous.tail if previous is not None else (parent.text if parent is not None else None)
    return before.rsplit("\n", 1)[-1] if _blank(before) else ""


def _unit(root: etree._Element) -> str:
    """The document's indentation step: the first increase from a parent's indentation to a child's."""
    for element in root.iter(etree.Element):
        parent = element.getparent()
        if parent is not None:
            inner, outer = _indent_of(element), _indent_of(parent)
            if len(inner) > len(outer) and inner.startswith(outer):
                return inner[len(outer):]
    return _INDENT


def _struct_fields(element: etree._Element) -> etree._Element:
    """The element whose children are a struct's fields (``parseType="Resource"`` or a nested Description)."""
    nested = element.find(DESCRIPTION)
    return nested if nested is not None and element.get(PARSE_TYPE) != "Resource" else element


def _find_container(element: etree._Element) -> etree._Element | None:
    """An array property's rdf:Bag, rdf:Seq or rdf:Alt."""
    for kind in _ARRAYS:
        found = element.find(f"{{{NS['rdf']}}}{kind}")
        if found is not None:
            return found
    return None


def _container(element: etree._Element) -> etree._Element:
    """An array property's container, created as an rdf:Bag when missing."""
    found = _find_container(element)
    return found if found is not None else _add(element, "rdf:Bag")


def _items(element: etree._Element) -> list[str]:
    bag = _find_container(element)
    return [] if bag is None else [(li.text or "").strip() for li in bag.findall(LI)]


def _append_items(element: etree._Element, values: list[str]) -> None:
    bag = _container(element)
    for value in values:
        _add(bag, "rdf:li", text=value)


def _remove_items(element: etree._Element, values: list[str]) -> list[str]:
    """Remove one ``rdf:li`` per value (the last one with that text); returns the values removed."""
    bag = _find_container(element)
    removed = []
    for value in values:
        matches = [] if bag is None else [li for li in bag.findall(LI) if (li.text or "").strip() == value]
        if matches:
            _drop(matches[-1])
            removed.append(value)
    return removed


def _in_own_ns(name) -> bool:
    """Whether a tag or attribute name is in the phototag namespace (comments' tags are not strings)."""
    return isinstance(name, str) and name.startswith(f"{{{PHOTOTAG_NS}}}")


def _is_own(li: etree._Element) -> bool:
    """A region phototag wrote: something in it is in the phototag namespace."""
    return any(_in_own_ns(e.tag) or any(map(_in_own_ns, e.attrib)) for e in li.iter())


def _add_dimensions(fields: etree._Element, stored_size: tuple[int, int]) -> None:
    dims = _add(fields, "mwg-rs:AppliedToDimensions", {PARSE_TYPE: "Resource"})
    for name, value in (("w", stored_size[0]), ("h", stored_size[1]), ("unit", "pixel")):
        _add(dims, f"stDim:{name}", text=str(value))


def _add_region(bag: etree._Element, region: Region) -> None:
    li = _add(bag, "rdf:li", {PARSE_TYPE: "Resource"}, declare=("mwg-rs", "stArea", "phototag"))
    _add(li, "mwg-rs:Type", text="Face")
    if region.name:
        _add(li, "mwg-rs:Name", text=region.name)
    _add(li, "mwg-rs:Description", text=region.description)
    area = _add(li, "mwg-rs:Area", {PARSE_TYPE: "Resource"})
    for name in ("x", "y", "w", "h"):
        _add(area, f"stArea:{name}", text=f"{getattr(region, name):.6f}")
    _add(area, "stArea:unit", text="normalized")
    extensions = _add(li, "mwg-rs:Extensions", {PARSE_TYPE: "Resource"})
    for name, value in region.extensions.items():
        _add(extensions, f"phototag:{name}", text=value)
