"""Build the shipped sentiment corpus (``train.jsonl`` and ``dev.jsonl``) deterministically.

Two sources, both written for this project:

* ``handwritten/*.txt`` — hand-written replies and opinion sentences, one per line under
  ``[negative]`` / ``[neutral]`` / ``[positive]`` headers (``#`` starts a comment line);
* compositional examples built here from hand-written fragments (aspects × opinions ×
  intensifiers × negations × contrast × closings), so that the model sees many ways of saying
  the same thing without any single template dominating.

Every example may also get surface variants (lower case, no punctuation, typos, emoji, a chat
mention, the tokenised lower-case style of some review corpora) because real replies arrive in
all of those shapes. The dev split is drawn by *base example*, so the variants of one sentence
never straddle train and dev.

Run ``python -m nlp.data.generate`` to rewrite the two files; the output depends only on the
fragments below, the hand-written files and ``SEED``.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

SEED = 20240611
DEV_FRACTION = 0.12
DATA_DIR = Path(__file__).resolve().parent
HANDWRITTEN_DIR = DATA_DIR / "handwritten"
LABELS = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class Example:
    """One labelled text; ``group`` ties surface variants to their base sentence."""

    text: str
    label: str
    group: str
    source: str


# --------------------------------------------------------------------------------------------
# Hand-written sentences
# --------------------------------------------------------------------------------------------


def read_handwritten(directory: Path = HANDWRITTEN_DIR) -> list[Example]:
    """Read every ``*.txt`` file under ``directory`` (sorted, so the order is stable)."""
    examples: list[Example] = []
    for path in sorted(directory.glob("*.txt")):
        label: str | None = None
        for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("# "):
                continue
            header = re.fullmatch(r"\[(\w+)\]", line)
            if header:
                label = header.group(1)
                if label not in LABELS:
                    raise ValueError(f"{path}:{lineno}: unknown label section {line!r}")
                continue
            if label is None:
                raise ValueError(f"{path}:{lineno}: text before any [label] header")
            examples.append(Example(line, label, f"{path.stem}:{lineno}", f"hand:{path.stem}"))
    return examples


# --------------------------------------------------------------------------------------------
# Fragments for compositional examples
# --------------------------------------------------------------------------------------------

# Aspects per touchpoint: (noun phrase, is_plural). Opinions are attached with the right verb.
ASPECTS: dict[str, list[str]] = {
    "delivery": [
        "the delivery",
        "the driver",
        "the courier",
        "the parcel",
        "the packaging",
        "the tracking",
        "shipping",
        "the delivery slot",
        "the box",
        "the delivery time",
    ],
    "support": [
        "the support team",
        "the agent",
        "customer service",
        "the person on the phone",
        "your helpdesk",
        "the live chat",
        "the call centre",
        "the team",
        "the advisor",
        "the technician",
        "the response time",
    ],
    "billing": [
        "the refund",
        "the billing",
        "the invoice",
        "the price",
        "the payment process",
        "the subscription",
        "the cancellation process",
        "the checkout",
    ],
    "app": [
        "the app",
        "the website",
        "the new update",
        "the login",
        "the search",
        "the checkout page",
        "the account page",
        "the booking system",
        "the interface",
    ],
    "store": [
        "the store",
        "the staff",
        "the shop",
        "the cashier",
        "the queue",
        "the branch",
        "the manager",
        "the waiter",
        "the service",
        "the restaurant",
    ],
    "product": [
        "the product",
        "the quality",
        "the fabric",
        "the battery",
        "the sound",
        "the fit",
        "the screen",
        "the material",
        "the design",
        "the taste",
        "the coffee",
        "the headphones",
        "the mattress",
        "the jacket",
        "the shoes",
        "the charger",
    ],
    "travel": [
        "the flight",
        "the crew",
        "the hotel",
        "the room",
        "the check-in",
        "the boarding",
        "the train",
        "the seat",
        "the lounge",
        "the gate staff",
        "the connection",
    ],
    "film": [
        "the film",
        "the movie",
        "the plot",
        "the acting",
        "the script",
        "the ending",
        "the dialogue",
        "the soundtrack",
        "the direction",
        "the cast",
        "the story",
        "the lead performance",
        "the pacing",
        "the humour",
        "the show",
        "the sequel",
    ],
    "food": [
        "the food",
        "the pizza",
        "the pasta",
        "the steak",
        "the curry",
        "the dessert",
        "the meal",
        "the soup",
        "the bread",
        "the menu",
        "the wine",
    ],
    "book": [
        "the book",
        "the novel",
        "the album",
        "the game",
        "the writing",
        "the characters",
        "the gameplay",
        "the story line",
        "the songs",
    ],
}

POS_ADJ: dict[str, list[str]] = {
    "general": [
        "great",
        "excellent",
        "fantastic",
        "brilliant",
        "amazing",
        "wonderful",
        "superb",
        "perfect",
        "outstanding",
        "lovely",
        "impressive",
        "first class",
        "top notch",
        "spot on",
        "really good",
        "fab",
        "faultless",
        "terrific",
        "exceptional",
    ],
    "delivery": ["quick", "fast", "on time", "early", "careful", "well packed", "reliable"],
    "support": [
        "helpful",
        "friendly",
        "patient",
        "knowledgeable",
        "quick to respond",
        "kind",
        "professional",
        "polite",
        "understanding",
        "efficient",
    ],
    "billing": ["clear", "fair", "simple", "transparent", "quick", "painless", "reasonable"],
    "app": ["easy to use", "fast", "intuitive", "smooth", "reliable", "simple", "clean"],
    "store": ["friendly", "welcoming", "clean", "well organised", "helpful", "attentive"],
    "product": [
        "well made",
        "sturdy",
        "comfortable",
        "beautiful",
        "durable",
        "good value",
        "high quality",
        "delicious",
        "soft",
        "powerful",
    ],
    "travel": ["comfortable", "on time", "smooth", "friendly", "spotless", "relaxing"],
    "film": [
        "gripping",
        "moving",
        "hilarious",
        "beautifully shot",
        "clever",
        "touching",
        "charming",
        "witty",
        "powerful",
        "engaging",
        "thrilling",
        "heartfelt",
        "beautifully acted",
        "entertaining",
        "gorgeous",
        "absorbing",
        "fresh",
        "inventive",
    ],
    "food": ["delicious", "tasty", "fresh", "perfectly cooked", "flavourful", "generous"],
    "book": ["gripping", "beautifully written", "addictive", "fun", "catchy", "moving"],
}

NEG_ADJ: dict[str, list[str]] = {
    "general": [
        "terrible",
        "awful",
        "horrible",
        "dreadful",
        "appalling",
        "disappointing",
        "useless",
        "a joke",
        "rubbish",
        "poor",
        "shocking",
        "a disaster",
        "pathetic",
        "really bad",
        "unacceptable",
        "abysmal",
        "a nightmare",
        "frustrating",
        "a mess",
    ],
    "delivery": ["late", "slow", "careless", "damaged", "unreliable", "a week late"],
    "support": [
        "rude",
        "unhelpful",
        "dismissive",
        "clueless",
        "slow to respond",
        "condescending",
        "impossible to reach",
        "useless",
    ],
    "billing": ["confusing", "wrong", "overpriced", "misleading", "a rip off", "unfair"],
    "app": ["buggy", "slow", "confusing", "broken", "clunky", "unusable", "glitchy"],
    "store": ["dirty", "chaotic", "understaffed", "rude", "messy", "overcrowded"],
    "product": [
        "flimsy",
        "cheap",
        "uncomfortable",
        "faulty",
        "badly made",
        "overpriced",
        "tasteless",
        "stale",
        "broken",
        "poor quality",
    ],
    "travel": ["delayed", "cramped", "filthy", "uncomfortable", "chaotic", "overbooked"],
    "film": [
        "boring",
        "dull",
        "predictable",
        "tedious",
        "pretentious",
        "lifeless",
        "clumsy",
        "overlong",
        "forgettable",
        "unfunny",
        "flat",
        "incoherent",
        "stale",
        "shallow",
        "clichéd",
        "lazy",
        "bland",
        "painfully slow",
    ],
    "food": ["cold", "bland", "greasy", "undercooked", "overcooked", "stale", "salty"],
    "book": ["boring", "repetitive", "predictable", "badly written", "dull", "forgettable"],
}

# Who or what the predicates below can be said of, per touchpoint.
PRED_SUBJECTS: dict[str, list[str]] = {
    "general": ["it", "the whole thing", "the experience", "this", "everything"],
    "delivery": ["the parcel", "my order", "the delivery", "the package"],
    "support": ["the agent", "your support team", "the advisor", "they", "the helpdesk"],
    "billing": ["they", "the billing team", "your finance team"],
    "app": ["the app", "the website", "the new version"],
    "store": ["the staff", "the team in store", "the shop assistant"],
    "product": ["it", "the product", "the charger", "the jacket", "the blender"],
    "travel": ["the flight", "the crew", "the airline", "the hotel"],
    "film": ["the film", "the movie", "the show", "this sequel"],
    "food": ["the food", "the meal", "the curry", "the pizza"],
    "book": ["the book", "the novel", "the game"],
}

# Verbs, idioms and whole predicates that carry the opinion themselves.
POS_PRED: dict[str, list[str]] = {
    "general": [
        "exceeded my expectations",
        "made my day",
        "was a real pleasure",
        "couldn't have been better",
        "was exactly what I needed",
        "blew me away",
        "deserves a big thank you",
        "was worth every penny",
        "never disappoints",
    ],
    "delivery": [
        "arrived a day early",
        "came right on time",
        "was left exactly where I asked",
        "turned up within the hour",
    ],
    "support": [
        "sorted it out in minutes",
        "fixed my problem straight away",
        "went above and beyond",
        "called me back as promised",
        "really listened",
    ],
    "billing": ["refunded me straight away", "sorted the charge out quickly"],
    "app": ["works flawlessly", "never crashes", "saves me so much time"],
    "store": ["made us feel welcome", "found exactly what I needed"],
    "product": ["works like a charm", "still works like new", "fits perfectly"],
    "travel": ["left on time", "made the trip easy", "looked after us really well"],
    "film": [
        "kept me hooked until the end",
        "made me laugh out loud",
        "moved me to tears",
        "stayed with me for days",
        "holds up on a second viewing",
        "won me over completely",
    ],
    "food": ["tasted amazing", "was cooked to perfection"],
    "book": ["kept me up all night", "had me hooked from page one"],
}

NEG_PRED: dict[str, list[str]] = {
    "general": [
        "let me down badly",
        "was a complete waste of time",
        "ruined my day",
        "was a total letdown",
        "wasn't worth the money",
        "fell well short",
        "left a lot to be desired",
        "drove me mad",
    ],
    "delivery": [
        "never showed up",
        "arrived smashed",
        "turned up a week late",
        "went to the wrong address",
        "got lost somewhere",
        "was left out in the rain",
    ],
    "support": [
        "never got back to me",
        "hung up on me",
        "kept me on hold for an hour",
        "closed my ticket without fixing anything",
        "ignored my emails",
    ],
    "billing": ["charged me twice", "still hasn't come through", "took a month"],
    "app": ["keeps crashing", "logged me out again", "won't let me pay", "freezes constantly"],
    "store": ["ignored me completely", "kept us waiting for ages"],
    "product": ["broke after a week", "stopped working after two days", "fell apart"],
    "travel": ["was cancelled at the last minute", "lost my luggage", "left two hours late"],
    "film": [
        "put me to sleep",
        "goes nowhere",
        "drags on forever",
        "makes no sense",
        "falls apart in the second half",
        "wastes a talented cast",
    ],
    "food": ["made me ill", "took an hour to arrive", "was swimming in grease"],
    "book": ["bored me to tears", "drags badly in the middle"],
}

INTENSIFIERS = [
    "",
    "",
    "",
    "really ",
    "very ",
    "so ",
    "extremely ",
    "incredibly ",
    "super ",
    "truly ",
    "absolutely ",
    "pretty ",
    "genuinely ",
    "quite ",
    "remarkably ",
    "especially ",
]

POS_OPENERS = [
    "",
    "",
    "",
    "Honestly, ",
    "Wow, ",
    "To be fair, ",
    "I have to say ",
    "Overall ",
    "Really happy: ",
    "Thanks! ",
    "As always, ",
    "Once again ",
    "Must say ",
    "Great news, ",
    "I'm impressed, ",
]
NEG_OPENERS = [
    "",
    "",
    "",
    "Honestly, ",
    "Sadly ",
    "Unfortunately ",
    "Once again ",
    "Yet again ",
    "Not happy: ",
    "Seriously, ",
    "Frankly ",
    "I'm sorry but ",
    "Really disappointed, ",
    "As usual, ",
]
POS_CLOSINGS = [
    "",
    "",
    "",
    " Thank you!",
    " Thanks!",
    " Will order again.",
    " Keep it up.",
    " Highly recommend.",
    " 10/10.",
    " Couldn't ask for more.",
    " Very happy.",
    " Well done.",
    " Cheers!",
    " Five stars from me.",
    " You guys rock.",
]
NEG_CLOSINGS = [
    "",
    "",
    "",
    " Never again.",
    " Very disappointed.",
    " Not acceptable.",
    " Sort it out.",
    " I want a refund.",
    " I expected better.",
    " Cancelling my account.",
    " Not good enough.",
    " Avoid.",
    " What a joke.",
    " So frustrating.",
]
POS_EMOJI = ["😊", "👍", "🙌", "❤️", "😍", "🙏", "👏", "⭐⭐⭐⭐⭐", "💯", ":)", ":D", "🎉"]
NEG_EMOJI = ["😡", "👎", "🙄", "😤", "😠", "🤬", "😞", ":(", "😒", "💔", "😩"]

# Contrast pairs: the verdict usually sits after the contrast word.
CONTRAST_NEG_FIRST = ["but", "but overall", "but in the end", "though in the end", "yet"]
CONTRAST_POS_FIRST = ["but", "but sadly", "but unfortunately", "however", "yet"]

# Neutral fragments: facts, logistics and questions.
NEUTRAL_FACTS = [
    "I ordered {thing} on {day}.",
    "{Thing} arrived on {day}.",
    "I called on {day}.",
    "I picked up {thing} on {day}.",
    "I used the {channel} this time.",
    "I contacted you through the {channel}.",
    "It was my {nth} order.",
    "I went with the {plan} plan.",
    "We booked {thing} for {day}.",
    "My {relative} placed the order.",
    "The order was for my {relative}.",
    "I bought {thing} for my {relative}.",
    "It was {thing} for my {relative}.",
    "{Thing} was collected by my {relative}.",
    "I usually order on {day}s.",
    "I'm using {thing} for work.",
    "I got {thing} in {colour}.",
    "I only had {thing} for a day before this survey.",
    "I switched to the {plan} plan on {day}.",
]
NEUTRAL_QUESTIONS = [
    "When will {thing} arrive?",
    "Can I change {thing}?",
    "How do I return {thing}?",
    "Is {thing} still under warranty?",
    "Can I get {thing} in {colour}?",
    "Do you deliver {thing} on {day}s?",
    "Where can I find the receipt for {thing}?",
    "Can I swap {thing} for a different size?",
    "Is it possible to cancel {thing}?",
    "What's the status of {thing}?",
    "Could you send me the invoice for {thing}?",
    "Does {thing} come with a charger?",
    "Can my {relative} pick up {thing}?",
    "Is there a {plan} plan?",
    "Can I reach you through the {channel}?",
    "How long does {thing} usually take?",
    "Who do I talk to about {thing}?",
    "Do you have {thing} in stock?",
]
THINGS = [
    "the parcel",
    "my order",
    "the jacket",
    "the laptop",
    "the coffee machine",
    "the booking",
    "the tickets",
    "the refund",
    "the replacement",
    "the sofa",
    "the subscription",
    "the blue dress",
    "the phone",
    "the table",
    "the headphones",
    "the gift card",
    "the flight",
    "the room",
    "the repair",
    "a new charger",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
CHANNELS = ["app", "website", "phone line", "live chat", "email form", "store"]
PLANS = ["basic", "family", "premium", "monthly", "annual", "business", "student"]
RELATIVES = [
    "brother",
    "sister",
    "mum",
    "dad",
    "wife",
    "husband",
    "partner",
    "son",
    "daughter",
    "boss",
    "colleague",
    "neighbour",
    "grandmother",
    "friend",
    "flatmate",
]
COLOURS = ["black", "white", "navy", "red", "green", "grey", "blue"]
NTHS = ["first", "second", "third", "fifth", "tenth"]

NONANSWER_PREFIXES = ["", "", "Hmm, ", "Honestly, ", "Sorry, ", "Um ", "Well, ", "To be honest "]
NONANSWER_CORES = [
    "nothing to add",
    "none",
    "that's it",
    "no comment",
    "n/a",
    "nothing else",
    "not really",
    "no idea",
    "can't think of anything",
    "nothing comes to mind",
    "that's all",
    "no further comments",
    "I'd rather not say",
    "it was for my {relative}",
    "it wasn't for me, it was for my {relative}",
    "my {relative} dealt with it",
    "I haven't used it yet",
    "too early to tell",
    "I don't remember",
    "not applicable",
    "no feedback",
    "all said already",
    "nothing more from me",
    "no other comments",
]

# Reviews in the compact "a X, Y noun" style common in criticism.
REVIEW_NOUNS = [
    "film",
    "movie",
    "comedy",
    "drama",
    "thriller",
    "documentary",
    "romance",
    "debut",
    "sequel",
    "novel",
    "album",
    "musical",
    "animated feature",
    "western",
    "horror movie",
]
REVIEW_POS = [
    "witty",
    "tender",
    "gorgeous",
    "smart",
    "funny",
    "moving",
    "heartfelt",
    "gripping",
    "lovely",
    "sharp",
    "affecting",
    "rousing",
    "luminous",
    "playful",
    "haunting",
    "warm",
    "exhilarating",
    "assured",
    "poignant",
    "delightful",
    "captivating",
    "compelling",
]
REVIEW_NEG = [
    "tedious",
    "dull",
    "clumsy",
    "plodding",
    "shrill",
    "incoherent",
    "lifeless",
    "bland",
    "overlong",
    "pretentious",
    "sloppy",
    "lazy",
    "forgettable",
    "hollow",
    "mawkish",
    "tiresome",
    "muddled",
    "leaden",
    "cynical",
    "inept",
    "monotonous",
    "witless",
]
REVIEW_POS_TAILS = [
    "",
    "",
    " that rewards patience",
    " with a big heart",
    " that earns its tears",
    " full of small pleasures",
    " that never talks down to its audience",
    " you will want to see twice",
    " anchored by a terrific central performance",
]
REVIEW_NEG_TAILS = [
    "",
    "",
    " that goes nowhere",
    " with nothing to say",
    " that overstays its welcome",
    " that wastes its cast",
    " drowning in clichés",
    " that feels twice its length",
    " without a single surprise",
]


# Incidents: an unresolved problem stated plainly is a complaint even without opinion words.
INCIDENTS = [
    "my flight was delayed",
    "my flight got cancelled",
    "my bag didn't arrive",
    "my order hasn't arrived",
    "the app has been down",
    "my refund still hasn't come through",
    "I've been on hold",
    "nobody has called me back",
    "the engineer didn't turn up",
    "my card was charged twice",
    "the parcel went missing",
    "my booking disappeared",
    "my connection was missed",
    "the website won't let me log in",
    "my complaint was ignored",
    "the replacement never came",
    "my seat was given away",
    "the heating still doesn't work",
    "the train was cancelled",
    "my account was locked",
]
DURATIONS = [
    "for three hours",
    "since Monday",
    "for two weeks",
    "again",
    "for the third time",
    "all day",
    "for over an hour",
    "for a month now",
    "twice this week",
    "since yesterday",
]
INCIDENT_TAILS = [
    "",
    "",
    "and nobody is helping",
    "and no one will tell me why",
    "what is going on?",
    "is anyone there?",
    "this is ridiculous",
    "and I'm still waiting",
    "no updates at all",
    "and support keeps saying wait",
    "not impressed",
    "really?",
    "how is this acceptable",
    "please help",
    "any update? thanks",
    "can someone look into it please",
    "thanks",
    "could you sort it out please?",
    "please advise",
]
INCIDENT_OPENERS = ["", "", "", "Hi, ", "Hello, ", "Hi there, ", "Dear team, ", "Morning, "]
# Problems that were solved well: praise even though a problem is mentioned.
RESOLUTIONS = [
    "my bag was lost but you found it within a day",
    "the flight was delayed but the crew kept us updated and looked after us",
    "the parcel was damaged but the replacement came the next morning",
    "I was charged twice but it was refunded within the hour",
    "the app crashed but support walked me through a fix in minutes",
    "my booking went wrong but the agent sorted it out straight away",
    "the first item was faulty but the exchange was effortless",
    "I missed my connection but the rebooking was quick and painless",
]
RESOLUTION_TAILS = [
    "",
    "",
    " Thank you!",
    " Great job.",
    " Really impressed.",
    " Thanks so much",
    " That's how it should be done.",
    " 👏",
]
INFO_QUESTIONS = [
    "what's the baggage allowance on {plan} fares?",
    "can I change {thing} online?",
    "do you fly to {city}?",
    "is the {day} flight to {city} on time?",
    "how do I add a bag to {thing}?",
    "which terminal is the {city} flight?",
    "can I pick a seat for {thing}?",
    "is there parking at the {city} store?",
    "do you deliver to {city}?",
    "how do I update the address on {thing}?",
    "what time does the {city} branch close on {day}?",
    "can I get a receipt for {thing}?",
    "is {thing} covered by the warranty?",
    "where do I send documents for {thing}?",
]
CITIES = [
    "Denver",
    "Boston",
    "Leeds",
    "Lisbon",
    "Chicago",
    "Dallas",
    "Berlin",
    "Dublin",
    "Manchester",
    "Seattle",
    "Toronto",
    "Madrid",
]


def _pick(rng: random.Random, items: Sequence[str]) -> str:
    return items[rng.randrange(len(items))]


def _be(aspect: str, rng: random.Random) -> str:
    # Mix tenses: survey replies talk about the past, reviews about the present.
    plural = aspect.endswith("s") and not aspect.endswith(("ss", "us"))
    if rng.random() < 0.55:
        return "were" if plural else "was"
    return "are" if plural else "is"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _adjective(rng: random.Random, table: dict[str, list[str]], domain: str) -> str:
    pool = table[domain] if rng.random() < 0.65 else table["general"]
    return _pick(rng, pool)


def _clause(rng: random.Random, domain: str, positive: bool) -> str:
    """One opinion clause about an aspect of ``domain``, e.g. 'the driver was really rude'."""
    if rng.random() < 0.3:
        preds = POS_PRED if positive else NEG_PRED
        key = domain if rng.random() < 0.6 else "general"
        return f"{_pick(rng, PRED_SUBJECTS[key])} {_pick(rng, preds[key])}"
    aspect = _pick(rng, ASPECTS[domain])
    adj = _adjective(rng, POS_ADJ if positive else NEG_ADJ, domain)
    # Multi-word opinions ("really good", "a joke", "well packed") take no intensifier.
    intensifier = _pick(rng, INTENSIFIERS) if " " not in adj else ""
    return f"{aspect} {_be(aspect, rng)} {intensifier}{adj}"


def _negated_positive(rng: random.Random, domain: str) -> str:
    """A positive adjective under negation, which reads as a complaint."""
    aspect = _pick(rng, ASPECTS[domain])
    adj = _adjective(rng, POS_ADJ, domain)
    be = _be(aspect, rng)
    neg = {"was": "wasn't", "were": "weren't", "is": "isn't", "are": "aren't"}[be]
    form = rng.randrange(4)
    if form == 0:
        return f"{aspect} {neg} {adj} at all"
    if form == 1:
        return f"{aspect} {neg} very {adj}"
    if form == 2:
        return f"I wouldn't say {aspect} {be} {adj}"
    return f"{aspect} {be} not {adj}, not even close"


def _denied_negative(rng: random.Random, domain: str) -> str:
    """Denial of a problem ('no issues with the delivery'), which reads as praise."""
    aspect = _pick(rng, ASPECTS[domain])
    return _pick(
        rng,
        [
            f"no issues at all with {aspect}",
            f"no complaints about {aspect}",
            f"nothing wrong with {aspect}, it was great",
            f"couldn't fault {aspect}",
            f"not a single problem with {aspect}",
            f"I can't say a bad word about {aspect}",
            f"{aspect} could not have been better",
            f"{aspect} never lets me down",
        ],
    )


def _fill(template: str, rng: random.Random) -> str:
    thing = _pick(rng, THINGS)
    return template.format(
        thing=thing,
        Thing=_cap(thing),
        day=_pick(rng, DAYS),
        channel=_pick(rng, CHANNELS),
        plan=_pick(rng, PLANS),
        relative=_pick(rng, RELATIVES),
        colour=_pick(rng, COLOURS),
        nth=_pick(rng, NTHS),
        city=_pick(rng, CITIES),
    )


def _opinion(rng: random.Random, positive: bool) -> str:
    domain = _pick(rng, list(ASPECTS))
    shape = rng.random()
    if shape < 0.45:
        core = _clause(rng, domain, positive)
        if rng.random() < 0.35:
            core += ", " + (
                _clause(rng, domain, positive)
                if rng.random() < 0.6
                else _clause(rng, _pick(rng, list(ASPECTS)), positive)
            )
    elif shape < 0.6:
        core = _negated_positive(rng, domain) if not positive else _denied_negative(rng, domain)
    elif shape < 0.72:
        # Mixed reply: the clause after the contrast word carries the verdict. Two different
        # aspects, otherwise the sentence contradicts itself.
        first = second = ""
        while first.split(" ")[:2] == second.split(" ")[:2]:
            first = _clause(rng, domain, not positive)
            second = _clause(rng, domain, positive)
        word = _pick(rng, CONTRAST_NEG_FIRST if positive else CONTRAST_POS_FIRST)
        core = f"{first}, {word} {second}"
    else:
        core = _clause(rng, domain, positive)
        if rng.random() < 0.4:
            core = f"{_pick(rng, ['overall', 'all in all', 'in short', 'basically'])}, {core}"
    opener = _pick(rng, POS_OPENERS if positive else NEG_OPENERS)
    closing = _pick(rng, POS_CLOSINGS if positive else NEG_CLOSINGS)
    text = f"{opener}{core}." if opener else f"{_cap(core)}."
    text = text + closing
    if rng.random() < 0.15:
        text += " " + _pick(rng, POS_EMOJI if positive else NEG_EMOJI)
    return _cap(text)


def _review_phrase(rng: random.Random, positive: bool) -> str:
    adjs = REVIEW_POS if positive else REVIEW_NEG
    a, b = rng.sample(adjs, 2)
    noun = _pick(rng, REVIEW_NOUNS)
    tail = _pick(rng, REVIEW_POS_TAILS if positive else REVIEW_NEG_TAILS)
    article = "an" if a[0] in "aeiou" else "a"
    core = f"{article} {a}, {b} {noun}{tail}"
    if rng.random() < 0.3:
        core = f"it's {core}"
    return _cap(core) + "."


def _incident(rng: random.Random) -> str:
    text = f"{_pick(rng, INCIDENTS)} {_pick(rng, DURATIONS)}"
    tail = _pick(rng, INCIDENT_TAILS)
    opener = _pick(rng, INCIDENT_OPENERS)
    return opener + (_cap(text) if not opener else text) + (f", {tail}" if tail else "")


def _resolution(rng: random.Random) -> str:
    return _cap(_pick(rng, RESOLUTIONS) + "." + _pick(rng, RESOLUTION_TAILS)).strip()


def _neutral(rng: random.Random) -> str:
    shape = rng.random()
    if shape < 0.15:
        return _cap(_fill(_pick(rng, INFO_QUESTIONS), rng))
    if shape < 0.4:
        return _fill(_pick(rng, NEUTRAL_FACTS), rng)
    if shape < 0.7:
        return _fill(_pick(rng, NEUTRAL_QUESTIONS), rng)
    core = _fill(_pick(rng, NONANSWER_CORES), rng)
    prefix = _pick(rng, NONANSWER_PREFIXES)
    text = f"{prefix}{core}" if prefix else _cap(core)
    return text + _pick(rng, ["", ".", ".", "!", " thanks", ", sorry"])


def compositional(rng: random.Random, n_per_label: dict[str, int]) -> list[Example]:
    """Build compositional examples; exact duplicates are skipped so counts are upper bounds."""
    out: list[Example] = []
    seen: set[str] = set()
    for label in LABELS:
        made = 0
        attempts = 0
        while made < n_per_label[label] and attempts < n_per_label[label] * 20:
            attempts += 1
            if label == "neutral":
                text = _neutral(rng)
            elif label == "negative" and rng.random() < 0.2:
                text = _incident(rng)
            elif label == "positive" and rng.random() < 0.05:
                text = _resolution(rng)
            elif rng.random() < 0.18:
                text = _review_phrase(rng, label == "positive")
            else:
                text = _opinion(rng, label == "positive")
            key = text.lower()
            if key in seen:
                continue
            seen.add(key)
            out.append(Example(text, label, f"gen:{label}:{made}", "generated"))
            made += 1
    return out


# --------------------------------------------------------------------------------------------
# Surface variants
# --------------------------------------------------------------------------------------------

_KEYBOARD_NEIGHBOURS = {
    "a": "qs",
    "e": "wr",
    "i": "uo",
    "o": "ip",
    "u": "yi",
    "s": "ad",
    "t": "ry",
    "n": "bm",
    "r": "et",
    "l": "k",
    "d": "sf",
    "h": "gj",
    "c": "xv",
    "m": "n",
    "g": "fh",
}


def typo(text: str, rng: random.Random) -> str:
    """Introduce one or two realistic typos (drop, double, swap or neighbour key)."""
    chars = list(text)
    for _ in range(1 + (rng.random() < 0.4)):
        letters = [i for i, c in enumerate(chars) if c.isalpha()]
        if len(letters) < 4:
            break
        i = _pick(rng, [str(x) for x in letters])
        idx = int(i)
        kind = rng.randrange(4)
        if kind == 0:
            del chars[idx]
        elif kind == 1:
            chars.insert(idx, chars[idx])
        elif kind == 2 and idx + 1 < len(chars):
            chars[idx], chars[idx + 1] = chars[idx + 1], chars[idx]
        else:
            near = _KEYBOARD_NEIGHBOURS.get(chars[idx].lower())
            if near:
                chars[idx] = _pick(rng, list(near))
    return "".join(chars)


def review_tokenised(text: str) -> str:
    """Lower-case and split punctuation and clitics the way tokenised review corpora do."""
    t = text.lower()
    t = re.sub(r"n't\b", " n't", t)
    t = re.sub(r"'(s|re|ve|ll|d|m)\b", r" '\1", t)
    t = re.sub(r"([.,!?;:()\"])", r" \1 ", t)
    return re.sub(r"\s+", " ", t).strip()


def chatty(text: str, rng: random.Random) -> str:
    """Casual chat style: lower case, dropped final punctuation, maybe a mention or tag."""
    t = text.lower().rstrip(".")
    roll = rng.random()
    if roll < 0.3:
        t = f"@{_pick(rng, ['support', 'helpdesk', 'shop', 'team', 'cxteam'])} {t}"
    elif roll < 0.4:
        t = f"{t} #{_pick(rng, ['feedback', 'customerservice', 'review', 'survey'])}"
    return t


def variants(example: Example, rng: random.Random) -> list[Example]:
    """Zero or more surface variants of one example, all sharing its group."""
    out: list[Example] = []
    text, label = example.text, example.label
    if len(text) < 3:
        return out
    if rng.random() < 0.35:
        out.append(Example(typo(text, rng), label, example.group, example.source + "+typo"))
    if rng.random() < 0.3:
        out.append(Example(chatty(text, rng), label, example.group, example.source + "+chat"))
    if rng.random() < 0.25:
        out.append(Example(review_tokenised(text), label, example.group, example.source + "+tok"))
    if label != "neutral" and rng.random() < 0.12:
        emoji = _pick(rng, POS_EMOJI if label == "positive" else NEG_EMOJI)
        out.append(Example(f"{text} {emoji}", label, example.group, example.source + "+emoji"))
    return out


# --------------------------------------------------------------------------------------------
# Chat forms: emoji-only, emoji-mixed and emoticon replies
# --------------------------------------------------------------------------------------------
# Built with their own random generator and added after everything else, so the rest of the
# corpus (and its dev split) is exactly what it was before they existed. The model sees them
# through nlp.chat_text.prepare (emoji → words), as at inference.

CHAT_SEED = SEED + 15
CHAT_EMOJI = {
    "positive": [
        "👍",
        "❤️",
        "🙂",
        "😀",
        "🙏",
        "😊",
        "👏",
        "🙌",
        "😍",
        "🎉",
        "💯",
        "⭐",
        "😄",
        "💕",
        "☺️",
        "😉",
        "🤝",
        "💪",
        "🔥",
        "😆",
        "💚",
        "✨",
    ],
    "negative": [
        "👎",
        "😡",
        "🤬",
        "🙁",
        "😞",
        "😠",
        "😤",
        "🙄",
        "😒",
        "💔",
        "😩",
        "😣",
        "😖",
        "😫",
        "☹️",
        "😕",
        "😓",
        "😿",
        "🤢",
        "😬",
    ],
    "neutral": ["🤷", "🤷‍♀️", "🤷‍♂️", "📅", "📍", "📧", "📱", "🚚", "❓", "🕒", "✉️", "ℹ️"],
}
# Emoji that take a skin tone; the tone must not change the label.
SKIN_TONES = ["\U0001f3fb", "\U0001f3fc", "\U0001f3fd", "\U0001f3fe", "\U0001f3ff"]
TONED = {"👍", "👎", "🙏", "👏", "🙌", "💪", "🤷"}
CHAT_EMOTICONS = {
    "positive": [":)", ":-)", ":D", ":-D", "=)", "<3", ";)", "^^", "(:", "xD"],
    "negative": [":(", ":-(", ":'(", ">:(", "):", ":-/", ":/", "</3", "=("],
    "neutral": [":|", ":-|", "¯\\_(ツ)_/¯"],
}
CHAT_PHRASES = {
    "positive": [
        "thanks",
        "thank you",
        "cheers",
        "all good now",
        "love it",
        "great service",
        "works perfectly",
        "got it, thanks",
        "much appreciated",
        "quick and easy",
        "super helpful",
        "fixed, thanks",
        "brilliant",
        "well done team",
        "amazing",
        "spot on",
        "very happy",
        "lovely staff",
        "arrived on time",
        "so easy",
        "best support ever",
        "you saved my day",
        "problem solved",
        "great job",
        "really pleased",
        "top notch",
        "thanks a lot",
        "nice and fast",
        "perfect, thanks",
        "love the new app",
        "happy customer",
        "10/10 would recommend",
    ],
    "negative": [
        "still waiting",
        "never again",
        "so slow",
        "not happy",
        "useless",
        "awful service",
        "this is a joke",
        "no reply yet",
        "item broken",
        "wrong item again",
        "waste of time",
        "very disappointed",
        "not good enough",
        "still nothing",
        "on hold for an hour",
        "parcel never came",
        "app keeps crashing",
        "nobody helps",
        "rude staff",
        "charged me twice",
        "not fixed",
        "late again",
        "so annoying",
        "terrible",
        "worst experience",
        "cancelled on me",
        "really poor",
        "do better",
        "thanks for nothing",
        "love waiting on hold",
        "great, still broken",
    ],
    "neutral": [
        "no",
        "nothing",
        "nothing else",
        "n/a",
        "not sure",
        "no idea",
        "maybe",
        "don't know",
        "we'll see",
        "later",
        "just browsing",
        "no comment",
        "can't say",
        "order 48213",
        "which one?",
        "what do you mean?",
        "it's in the email",
        "same as before",
        "haven't tried it yet",
        "ask my husband",
        "not yet",
        "who knows",
        "no opinion",
        "nothing to report",
    ],
}
ELONGATED = {
    "positive": ["thaaanks", "sooo good", "loooove it", "yesss", "amaaazing", "thank youuu"],
    "negative": ["sooo slow", "nooooo", "ughhh", "whyyy", "sooo bad", "stilllll waiting"],
    "neutral": ["hmmm", "ummm", "sooo... no idea", "idk", "mehh not sure"],
}


def _chat_emoji(rng: random.Random, label: str) -> str:
    e = _pick(rng, CHAT_EMOJI[label])
    if e in TONED and rng.random() < 0.4:
        e += _pick(rng, SKIN_TONES)
    return e


def chat_forms(seed: int = CHAT_SEED) -> list[Example]:
    """Emoji-only, emoji-mixed, emoticon and elongated replies, all three labels."""
    rng = random.Random(seed)
    out: list[Example] = []

    def add(text: str, label: str, kind: str) -> None:
        out.append(Example(text, label, f"chat:{kind}:{label}:{len(out)}", f"chat:{kind}"))

    for label in LABELS:
        # Every emoji alone, twice and three times.
        for e in CHAT_EMOJI[label]:
            for times in (1, 2, 3):
                add(e * times, label, "emoji")
        for _ in range(40):
            a, b = _chat_emoji(rng, label), _chat_emoji(rng, label)
            add(a + (" " if rng.random() < 0.3 else "") + b, label, "emoji")
        for e in CHAT_EMOTICONS[label]:
            add(e, label, "emoticon")
        for _ in range(260):
            phrase = _pick(rng, CHAT_PHRASES[label])
            if rng.random() < 0.3:
                phrase = phrase.capitalize()
            roll = rng.random()
            if roll < 0.45:
                mark = _chat_emoji(rng, label) * (1 + int(rng.random() < 0.3))
            elif roll < 0.7:
                mark = _pick(rng, CHAT_EMOTICONS[label])
            elif roll < 0.85:
                mark = _chat_emoji(rng, label) + _chat_emoji(rng, label)
            else:
                mark = (
                    _pick(rng, ["!!!", "!!!!!", "...", "??", "!!"])
                    + " "
                    + (_chat_emoji(rng, label))
                )
            if rng.random() < 0.2 and not mark.startswith(("!", ".", "?")):
                add(f"{mark} {phrase}", label, "mixed")
            else:
                add(f"{phrase}{'' if rng.random() < 0.3 else ' '}{mark}", label, "mixed")
        for word in ELONGATED[label]:
            add(word, label, "elongated")
            add(f"{word} {_chat_emoji(rng, label)}", label, "elongated")
    return out


# --------------------------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------------------------


def build(seed: int = SEED) -> tuple[list[Example], list[Example]]:
    """Return (train, dev) examples; deterministic for a given seed and fragment set."""
    rng = random.Random(seed)
    hand = read_handwritten()
    generated = compositional(rng, {"negative": 1600, "neutral": 1100, "positive": 1500})
    base = hand + generated
    groups = sorted({e.group for e in base})
    # Stable per-group split that does not move when unrelated groups are added.
    dev_groups = {
        g
        for g in groups
        if int(hashlib.sha256(f"{seed}:{g}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        < DEV_FRACTION
    }
    everything: list[Example] = []
    for example in base:
        everything.append(example)
        everything.extend(variants(example, rng))
    # Drop exact duplicates (case-sensitive), keeping the first occurrence.
    seen: dict[str, str] = {}
    unique: list[Example] = []
    for example in everything:
        previous = seen.get(example.text)
        if previous is not None:
            if previous != example.label:
                raise ValueError(f"conflicting labels for {example.text!r}")
            continue
        seen[example.text] = example.label
        unique.append(example)
    # Chat forms come last and never override a hand-written sentence of the same text.
    for example in chat_forms():
        if example.text not in seen:
            seen[example.text] = example.label
            unique.append(example)
            if (
                int(hashlib.sha256(f"{seed}:{example.group}".encode()).hexdigest()[:8], 16)
                / 0xFFFFFFFF
                < DEV_FRACTION
            ):
                dev_groups.add(example.group)
    train = [e for e in unique if e.group not in dev_groups]
    dev = [e for e in unique if e.group in dev_groups]
    rng.shuffle(train)
    return train, dev


def _write(path: Path, examples: Sequence[Example]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for e in examples:
            record = {"text": e.text, "label": e.label, "source": e.source}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


def _summary(name: str, examples: Sequence[Example]) -> Iterator[str]:
    counts = Counter(e.label for e in examples)
    yield f"{name}: {len(examples)} examples " + ", ".join(
        f"{label}={counts[label]}" for label in LABELS
    )


def main() -> None:
    """Rewrite ``train.jsonl`` and ``dev.jsonl`` next to this file."""
    train, dev = build()
    _write(DATA_DIR / "train.jsonl", train)
    _write(DATA_DIR / "dev.jsonl", dev)
    for line in [*_summary("train", train), *_summary("dev", dev)]:
        print(line)


if __name__ == "__main__":
    main()
