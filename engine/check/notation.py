"""Subscripts and superscripts written as TeX-like markup, turned into the Unicode a reader sees.

Earlier versions wrote the mistakes' formulas into a file's notes as "δ_l = w_{l+1}ᵀ·δ_{l+1}";
such files still exist, and their notes are shown to users as they are read. `unicode_notation`
rewrites that markup the way the app writes formulas now: "δₗ = wₗ₊₁ᵀ·δₗ₊₁". Only a group
whose every character has a Unicode subscript (or superscript) is rewritten, so identifiers such
as my_autograd.dat or dL_dw1 are left alone.
"""

import re

SUBSCRIPT = dict(zip("0123456789+-=()aehijklmnoprstuvx",
                "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ", strict=True))
SUPERSCRIPT = dict(zip("0123456789+-=()inT", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁱⁿᵀ", strict=True))

# x_{l+1}, x^{T}; x_l, x^2 after a one-letter symbol (so "my_autograd" is no subscript)
_GROUP = re.compile(r"(?P<mark>[_^])\{(?P<braced>[^{}]*)\}"
                    r"|(?<!\w)(?P<letter>[^\W\d_])(?P<bare_mark>[_^])(?P<bare>[0-9a-zA-Z])"
                    r"(?![0-9a-zA-Z_])")


def unicode_notation(text: str) -> str:
    """`text` with x_{...}, x^{...}, x_l and x^2 as Unicode sub- and superscripts where every
    character has one; anything else is left as written."""
    def rewrite(match: re.Match) -> str:
        mark = match["mark"] or match["bare_mark"]
        inner = match["braced"] if match["mark"] else match["bare"]
        table = SUBSCRIPT if mark == "_" else SUPERSCRIPT
        if inner and all(c in table for c in inner.replace(" ", "")):
            return (match["letter"] or "") + "".join(table[c] for c in inner.replace(" ", ""))
        return match.group(0)

    return _GROUP.sub(rewrite, text)


# what a reader must never see as text: TeX-like groups, backslash commands, HTML sub/sup tags,
# and an underscore subscript after a one-letter symbol (δ_l, y_(l-1), Σ_units)
_RAW = re.compile(r"[_^]\{|\\[A-Za-z{(]|</?su[bp]>|(?<!\w)[^\W\d_][_^][\w(]")


def raw_markup(text: str) -> list[str]:
    """The pieces of `text` that are markup shown as text (empty when there are none)."""
    return _RAW.findall(text)
