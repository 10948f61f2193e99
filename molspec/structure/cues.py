"""The cue lexicon of the cue labeler: opening phrases and body words per bond.

Entries are generic discourse markers (from the paper's keyword appendix, notes/mole-syn.md §1,
and common Long-CoT phrasing), not phrases lifted from the hand-labelled traces.
"""

from __future__ import annotations

import re

HEAD_CHARS = 90  # the opening words: where a step announces what it is going to do


def _opening(*alternatives: str) -> re.Pattern[str]:
    """Any alternative at the very start of a step, after optional markup or punctuation."""
    return re.compile(r"^\W*(?:" + "|".join(alternatives) + ")", re.IGNORECASE)


_CHECK_VERBS = (
    r"(?:just )?(?:double[- ]check|check|verify|confirm|re-?check|re-?examine|re-?verify|re-?calculate|"
    r"re-?compute|re-?do|go back|make sure(?! i understand)|test|sanity[- ]check|cross[- ]check|re-?consider|re-?visit|"
    r"think again|re-?evaluate|plug)"
)
REFLECT_HEAD = _opening(
    r"wait\b(?!,? (?:so|then|now|therefore|thus)\b)",
    r"hold on",
    r"hmm+,? (?:but|wait|no)",
    r"but wait",
    r"oops",
    r"no,",
    r"actually,? no",
    r"(?:but |now |so |okay,? |first,? )?(?:let me|let's|lets|i(?: should|'ll| will| need to)) " + _CHECK_VERBS,
    r"double[- ]check",
    r"verif(?:y|ying|ication)",
    r"to (?:check|verify|confirm)",
    r"check(?:ing)?\b",
    r"is (?:this|that) (?:right|correct)",
    r"that (?:can't|cannot|doesn't|does not) (?:be|seem|make)",
    r"that's (?:not|wrong)",
    r"i (?:think i )?made a mistake",
    r"but (?:is|does|did|was|are|would|could|should) (?:this|that|it|my|the)\b",
)
_EXPLORE_TOPICS = (
    r"(?:approach|way|idea|method|angle|thought|possibility|perspective|point|argument|counterargument|"
    r"aspect|factor|consideration|option|thing|issue|concern)"
)
EXPLORE_HEAD = _opening(
    r"(?:wait,? |hmm,? |but |so |now,? |okay,? )?alternatively",
    r"(?:wait,? |hmm,? |but |so |now,? |okay,? )?another\b",
    r"what if",
    r"what about",
    r"how about",
    r"suppose",
    r"(?:but |so |hmm,? |wait,? )?(?:maybe|perhaps) (?:we|i|it|there|the|this|instead|another|a)\b",
    r"(?:let me|let's|lets|i'll|i could|we could) (?:try|consider|think about|explore|assume|guess|look at|approach)",
    r"on the (?:other hand|flip side)",
    r"conversely",
    r"(?:there's|there is|there are) also",
    r"(?:i|we) (?:should|need to|could|might) (?:also )?(?:consider|think about|explore|look at|try)",
    r"also,",
    r"additionally",
    r"(?:first|second|next),? (?:i should|let me|let's) (?:think|consider|look)",
    r"(?:one|a) (?:possible |common |main |big |major )?" + _EXPLORE_TOPICS,
    r"(?:the )?counter-?arguments?",
    r"(?:the )?arguments? (?:for|against|in favou?r)",
    r"in terms of",
    r"considering",
)
DEEP_HEAD = _opening(
    r"therefore",
    r"thus",
    r"hence",
    r"so,? (?:this|that|we|the|if|it|in)\b",
    r"which means",
    r"this (?:means|implies|gives)",
    r"it follows",
    r"since",
    r"because",
    r"substitut\w*",
    r"plugging",
    r"from (?:this|that|equation|the)\b",
    r"combining",
    r"putting (?:this|these|it) (?:all )?together",
    r"i need to weigh",
    r"weighing",
    r"balancing",
    # a contrast that answers the previous point ("However, ...") rather than checking or branching
    r"(?:but|however)\b(?!,? (?:wait|let me|let's|i should|maybe|perhaps|what|another|hold|alternatively))",
    r"if (?:we|the|this|that|i)\b",
    # a judgement: weighing reaches a stance
    r"(?:so,? |overall,? |in conclusion,? |putting [^,]{0,30},? )?(?:i think|i lean|i believe|i agree|"
    r"i disagree|my (?:stance|position|view)|on balance|where do i stand)",
)
NORMAL_HEAD = _opening(
    r"okay",
    r"ok\b",
    r"alright",
    r"all right",
    r"first,? (?:let me|let's|i need to) (?:understand|read|parse|recall|write|note|restate)",
    r"the problem (?:says|states|asks|gives|is)",
    r"we (?:need|are asked) to (?:find|compute)",
    r"i need to (?:find|figure out|compute|determine|calculate)",
    r"given",
    r"(?:let me|let's) (?:write|list|compute|calculate|note|denote|recall|restate|summarize|outline|rewrite)",
    r"compute",
    r"calculat\w*",
    r"(?:so|thus|therefore),? the (?:final )?answer",
    r"the (?:final )?answer is",
    r"final answer",
    r"in summary",
    r"to summarize",
    r"(?:hmm,? |so,? |okay,? )*(?:the main (?:points|arguments)|to recap|so far|summarizing)",
    r"(?:pros|cons|arguments? (?:for|against))\b[^:\n]{0,40}:",
    r"[-*] ",
    r"\d+\. ",
)
# Body cues, counted anywhere in a step. Entries are words or short phrases, matched on whole
# tokens of the lower-cased text (one dictionary lookup per token, so labelling stays fast).
# fmt: off
BODY_CUES: dict[str, tuple[str, ...]] = {
    "reflect": (
        "correct", "incorrect", "check", "checks", "checked", "checking", "verify", "verified", "verifies",
        "verifying", "verification", "confirm", "confirms", "confirmed", "mistake", "miscalculated",
        "miscalculation", "error", "wrong", "match", "matches", "matched", "consistent", "same result",
        "same answer", "same as before", "makes sense", "that's right", "double-check", "double check",
        "re-examine", "reexamine", "again", "as before", "earlier", "contradiction", "contradicts",
        "doesn't make sense", "doesn't add up", "not right", "valid", "holds",
    ),
    "explore": (
        "maybe", "perhaps", "might", "could", "possibly", "alternatively", "what if", "suppose", "try",
        "guess", "approach", "idea", "angle", "aspect", "perspective", "argument", "consider",
    ),
    "deep": (
        "therefore", "thus", "hence", "so", "which means", "implies", "it follows", "follows that", "because",
        "since", "must", "means that", "we get", "we have", "gives", "giving", "leads to", "reduces to",
        "substitute", "substitutes", "substituting", "substituted", "substitution", "solve", "solves",
        "solving", "solved", "then", "if", "consequently", "⇒", "=>", "→",
    ),
    "normal": (
        "boxed", "final answer", "answer is", "the problem says", "the problem states", "the problem asks",
        "compute", "calculate", "simplify", "simplifies", "simplified", "simplifying", "simplification",
        "divided by", "remainder", "summary", "summarize", "summarise", "summarizing", "outline",
        # setting up: notation, coordinates, the goal
        "denote", "denotes", "denoted", "notation", "define", "set up", "parametrize", "parameterize",
        "parametrization", "coordinate", "coordinates", "let me write", "we need to find",
        "we need to compute", "i need to find", "i need to compute", "need to determine", "the question is",
    ),
}
# fmt: on
LIST_ITEM = re.compile(r"^[ \t]*(?:[-*]|\d+\.) ", re.MULTILINE)  # list lines: enumerating, summarising
EQUALS = re.compile(r"=|≡|≈")
