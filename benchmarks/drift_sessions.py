"""Scripted multi-turn sessions for the topic-shift stress test (``benchmarks/drift.py``).

Six domains (negotiation, medical intake, math tutoring, trip planning, code review,
role-play), four scenarios each. A session has the long-tail shape of the paper's Sec. 2.2:
four long, information-dense opening turns (the warm window), then short dependent
follow-ups ("Should I accept $final?", "Why?", "I draw my sword."). A *shift* variant
abruptly changes topic after a few follow-ups, either to another domain's scenario (long
turns) or to a casual off-topic thread (banana bread, the capital of Peru...).

Splits are disjoint at the text level: scenarios 0 and 2 of every domain, even-indexed domain
follow-ups and even-indexed off-topic threads are ``dev``; scenarios 1 and 3, odd-indexed
follow-ups and threads are ``test``. Both were looked at while the locality features were
chosen, so both are development sets now. ``holdout`` (``HOLDOUT``, ``HOLDOUT_FOLLOWUPS``,
``HOLDOUT_OFFTOPIC``: two new scenarios per domain, new follow-ups and off-topic threads) was
written afterwards, and its results were looked at when the far-word feature was chosen: it is
a development set now too. ``holdout2`` and ``holdout3`` (``drift_holdout2.py``,
``drift_holdout3.py``, same shape) were each written blind, by an author who saw neither the
detector nor any result nor the other blind set. ``holdout2`` was run once the detector was
frozen, and its result was then looked at; ``holdout3`` was run afterwards on the same frozen
detector, unchanged: a second, untouched estimate. Both were then looked at. ``holdout4``
(``drift_holdout4.py``) was written blind the same way in a later stop, and was run only once
the next detector was frozen, then looked at; ``holdout5`` (``drift_holdout5.py``) and
``holdout6`` (``drift_holdout6.py``) likewise, each for the detector after the previous one; ``holdout7``
(``drift_holdout7.py``) was then run on holdout6's frozen detector, unchanged: a second,
untouched estimate of it. ``holdout8`` and ``holdout9`` (``drift_holdout8.py``,
``drift_holdout9.py``) were written blind in a later stop by two authors working at the same
time (each told not to read the other's file; they chose some themes alike) and run once on
the same detector, still unchanged.
Slot values (prices, days, names) are drawn per session with a seeded RNG. Text uses
``string.Template`` slots (``$ask``), so code with braces needs no escaping.
"""

from __future__ import annotations

import importlib
import random
from dataclasses import dataclass, field
from string import Template

Turn = tuple[str, str]  # (user query, teacher answer)

DOMAINS = ("negotiation", "medical", "math", "trip", "code", "roleplay")
# written blind by authors who saw neither the detector nor a result
BLIND = ("holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9")
SPLITS = ("dev", "test", "holdout", *BLIND)


@dataclass(frozen=True)
class Scenario:
    domain: str
    name: str
    system: str
    warm: tuple[Turn, ...]  # the four long opening turns, in order
    followups: tuple[Turn, ...]  # short follow-ups specific to this scenario
    slots: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class Session:
    """One scripted session. ``turns[i]`` is turn i+1; ``shift_turn`` (1-based) is the first
    off-topic turn, ``None`` for an on-topic session."""

    sid: str
    domain: str
    scenario: str
    split: str
    system: str
    turns: list[Turn]
    shift_turn: int | None = None
    shift_to: str | None = None


# --------------------------------------------------------------------------------------------
# Negotiation
# --------------------------------------------------------------------------------------------

_NEG_SYS = "You are a calm, practical negotiation coach. Answer in two or three sentences."

NEGOTIATION = (
    Scenario(
        "negotiation",
        "selling-bike",
        _NEG_SYS,
        (
            (
                "I'm selling my $item: a 2019 frame with a Shimano 105 groupset, new tyres and a fresh "
                "service last month. Similar ones list for $low to $high dollars online. I'd like to get "
                "about $ask. How should I write the listing and what price should I put on it?",
                "List it slightly above your target, around $list dollars, so you have room to come down. "
                "Lead with the groupset, the recent service and the new tyres, add clear photos in daylight, "
                "and say you are open to reasonable offers from serious buyers.",
            ),
            (
                "A buyer called $buyer messaged me. He says he has cash, can pick it up tomorrow, and offers "
                "$offer because he saw a similar model for that price last month. He sounds serious but "
                "pushy. How do I reply without losing him?",
                "Thank him, acknowledge the cash and quick pickup, and explain why your $item is worth more: "
                "the recent service and new tyres. Counter firmly but politely, for example at $counter, and "
                "invite him to see it in person.",
            ),
            (
                "$buyer answered that $offer is really his budget, but he might stretch a little if I include "
                "the pedals and the bottle cages. The pedals cost me 60 dollars. What counter-offer makes "
                "sense at this point?",
                "Offer the pedals and cages as part of a package at $mid; they cost you little now and make "
                "the deal feel generous. Keep the accessories as your trade, not an extra discount, so the "
                "price stays anchored near your target.",
            ),
            (
                "I countered at $counter with the pedals included. He said that is too much and asked whether "
                "I would meet him in the middle. What does meeting in the middle mean here and should I "
                "accept it?",
                "Meeting in the middle would land around $mid dollars. That is a reasonable outcome given his "
                "cash and quick pickup, but you can also hold at $final if you feel other buyers are "
                "interested.",
            ),
        ),
        (
            (
                "He says $final is final.",
                "Then decide whether $final beats waiting for another buyer; if "
                "the listing is fresh you can politely hold out a bit longer.",
            ),
            (
                "He wants to test ride it first. Is that safe?",
                "Yes, if you ask for his ID or the cash to hold "
                "during the ride and keep it to a short loop you can see.",
            ),
            (
                "Should I hold his ID during the ride?",
                "Holding the ID or the cash is normal and most honest buyers accept it without fuss.",
            ),
            (
                "He asked if the saddle is included.",
                "Say yes; a saddle has little resale value and it makes the package feel complete.",
            ),
            (
                "He agreed to $mid!",
                "Great outcome. Confirm the time and place, and bring a simple receipt for both of you to sign.",
            ),
            (
                "Should I ask for cash or a transfer?",
                "Cash counted in person is safest for a private sale; avoid cheques and payment links.",
            ),
        ),
        {"item": ("road bike", "gravel bike", "mountain bike", "touring bike")},
    ),
    Scenario(
        "negotiation",
        "salary-offer",
        "You are a career coach who helps people negotiate job offers. Be concise.",
        (
            (
                "I just got a job offer as a senior data analyst at a logistics company. They offered $offer "
                "thousand a year plus a small bonus, but the market rate for my experience seems to be $low "
                "to $high thousand. I really like the team. How should I respond to the recruiter?",
                "Thank the recruiter warmly, say you are excited about the team, and ask for time to review "
                "the full package. Then come back with a specific number near $ask thousand, backed by the "
                "market data and your experience.",
            ),
            (
                "The recruiter called back and said the base salary band tops out at $counter thousand, but "
                "there might be flexibility on the signing bonus and the start date. I also care about "
                "remote work two days a week. What should I prioritise in the next call?",
                "Prioritise what matters most long term: base salary compounds, so push the base to the top "
                "of the band first. Then ask for a signing bonus to close the remaining gap, and get the two "
                "remote days written into the offer letter.",
            ),
            (
                "They came back with $mid thousand base, a five thousand signing bonus and one remote day. "
                "My current employer might make a counter-offer if I resign. How do I weigh this and what "
                "should I say next?",
                "That is close to your target; the gap is mainly the second remote day. Ask once, politely, "
                "for two remote days in exchange for accepting today. Treat any counter-offer from your "
                "current employer with caution, since the reasons you wanted to leave rarely change.",
            ),
            (
                "I asked for the second remote day and they said they need to check with the hiring manager. "
                "Meanwhile they want a verbal yes by Friday. Is it risky to keep negotiating at this point?",
                "One clear, final request is normal and rarely costs an offer. Tell them you are ready to "
                "accept at $mid thousand with two remote days, and that you can give a verbal yes on Friday "
                "once that is confirmed.",
            ),
        ),
        (
            (
                "They said yes to two remote days.",
                "Then accept warmly and ask for the updated offer in writing before you resign.",
            ),
            (
                "Should I tell my boss today?",
                "Wait until you have the signed written offer, then resign in person and keep it short and positive.",
            ),
            (
                "What if my boss offers $final thousand to stay?",
                "A counter-offer rarely fixes why you wanted "
                "to leave; weigh it, but most people who accept leave within a year.",
            ),
            (
                "Can I ask to start a week later?",
                "Yes, a short delay for a break between jobs is a normal request and usually granted.",
            ),
            (
                "Is the signing bonus taxed?",
                "Yes, it is taxed as regular income, so expect a noticeably smaller amount on the payslip.",
            ),
            (
                "How do I write the acceptance email?",
                "Thank them, confirm the salary, bonus, remote days and "
                "start date, and say you look forward to joining the team.",
            ),
        ),
        {"ask": ("95", "105", "120")},
    ),
    Scenario(
        "negotiation",
        "used-car",
        _NEG_SYS,
        (
            (
                "I'm buying a used 2017 Toyota Corolla from a dealer. It has 80,000 miles, one previous owner "
                "and a full service history. They list it at $ask hundred dollars, which looks a bit above "
                "similar cars nearby. How should I approach the negotiation?",
                "Research three or four comparable listings and bring printouts. Start by asking about the "
                "out-the-door price including fees, then make a first offer around $offer hundred based on "
                "those comparables, and be ready to walk away.",
            ),
            (
                "The salesman said the price is already discounted and that another couple is coming to see "
                "the car this afternoon. He offered to knock off three hundred dollars if I sign today. "
                "Is that pressure tactic real and how should I answer?",
                "Treat the other buyers as a classic urgency tactic. Say calmly that you are a serious buyer "
                "but will not sign today without an independent inspection, and repeat your offer of "
                "$offer hundred with the comparables in hand.",
            ),
            (
                "The inspection found the brake pads are worn and one tyre needs replacing, about 450 dollars "
                "of work in total. The dealer now offers $counter hundred. What should my counter-offer be "
                "given the inspection?",
                "Use the inspection as leverage: ask either for the repairs to be done before delivery or "
                "for the 450 dollars to come off the price. A counter around $mid hundred is fair and easy "
                "to justify.",
            ),
            (
                "They agreed to replace the brake pads but not the tyre, at $mid hundred. They also want to "
                "sell me an extended warranty for 1,200 dollars and a paint protection package. What do you "
                "think I should do?",
                "The deal on the car itself is now reasonable. Decline the paint protection outright, and "
                "only consider the warranty if they cut it sharply, since a Corolla with this history is "
                "reliable.",
            ),
        ),
        (
            (
                "Should I accept $mid hundred?",
                "Yes, if the out-the-door price has no surprise fees; ask to see the final figure in writing first.",
            ),
            (
                "They added a 600 dollar documentation fee.",
                "Push back: ask them to remove it or lower the price by the same amount, or you walk.",
            ),
            (
                "Is financing through the dealer a good idea?",
                "Only if their rate beats your bank's pre-approval; compare the total cost, not the monthly payment.",
            ),
            (
                "What about the warranty at 700?",
                "At 700 it is closer to fair, but the car's record suggests you can skip it.",
            ),
            (
                "Can I still walk away now?",
                "Yes, until you sign you can walk away; doing so politely often brings a better offer by phone.",
            ),
            (
                "They threw in floor mats.",
                "Nice, take them, but do not let small extras distract you from the total price.",
            ),
        ),
        {"ask": ("148", "155", "162")},
    ),
    Scenario(
        "negotiation",
        "rent-renewal",
        "You are a pragmatic advisor for tenants dealing with landlords. Keep answers short.",
        (
            (
                "My lease ends in two months and my landlord wants to raise the rent from $offer to $ask "
                "dollars a month. I've been a reliable tenant for three years, always paid on time, and "
                "similar flats in the building rent for about $counter. How can I negotiate the increase?",
                "Write a friendly note stressing three years of on-time payments and low turnover costs "
                "for them. Point to the comparable rents near $counter and propose renewing at that level, "
                "perhaps for a longer lease to give them security.",
            ),
            (
                "The landlord replied that taxes and insurance went up this year, so he can only go down "
                "to $final. He also mentioned that the kitchen needs new appliances soon. How should I use "
                "that in my answer?",
                "Acknowledge his higher costs, then offer a middle figure such as $mid if he replaces the "
                "old appliances during the new lease. Tie any increase to concrete improvements.",
            ),
            (
                "He agreed to replace the fridge and the oven, but wants a two-year lease at $mid with a "
                "three percent increase in the second year. Is a two-year lease a good idea for me?",
                "A two-year lease protects you from a bigger jump next year and the new appliances add "
                "value. Ask to cap the second-year increase at two percent, or to get a month of notice "
                "flexibility if you need to move.",
            ),
            (
                "He said two percent is fine if I agree to take care of minor repairs under 100 dollars "
                "myself. I'm not very handy. Should I accept that clause in the lease?",
                "Accept only if the clause is specific: define minor repairs, exclude plumbing, electrics "
                "and appliances, and keep the 100 dollar cap per repair, not per year.",
            ),
        ),
        (
            (
                "He agreed to exclude plumbing.",
                "Good, then the clause is reasonable; get every change into the written lease before you sign.",
            ),
            (
                "Should I ask for a new lease or an addendum?",
                "An addendum to the current lease is fine if it lists the rent, term, repairs clause and appliances.",
            ),
            (
                "What if he refuses the cap?",
                "Then propose a yearly total of 300 dollars instead; most landlords prefer a predictable limit.",
            ),
            (
                "Is $mid still fair compared to the building?",
                "Yes, it sits at the level of comparable flats, and you gain new appliances.",
            ),
            (
                "Can he raise it again mid-lease?",
                "No, a fixed-term lease locks the rent unless the lease itself says otherwise.",
            ),
            (
                "When should I sign?",
                "Sign once the written terms match what you agreed, ideally a month before the current lease ends.",
            ),
        ),
        {"ask": ("1600", "1800", "2100")},
    ),
)

NEGOTIATION_FOLLOWUPS = (
    (
        "Should I accept $final?",
        "$final is within a fair range; accept if the rest of the terms are good, "
        "otherwise ask once for a little more.",
    ),
    ("What if they walk away?", "Let them go politely; a fair offer usually comes back, and you keep your position."),
    ("Is that too aggressive?", "No, it is firm but reasonable as long as you explain the number."),
    (
        "How do I say that politely?",
        "Thank them for the offer, restate what you value, and name your number without apologising.",
    ),
    (
        "They said it's their final offer.",
        "Final offers often are not; pause a day, then reply with one small, specific request.",
    ),
    (
        "Should I wait a few days?",
        "A short pause is fine and signals you have options, but do not go silent for a week.",
    ),
    ("Can I ask for a bit more?", "Yes, one more modest ask is normal; frame it around value, not need."),
    ("What's a fair middle ground?", "Somewhere near $mid, which splits the difference and is easy to justify."),
    (
        "Should I put it in writing?",
        "Yes, confirm the agreed price and terms in a short message so nothing is forgotten.",
    ),
    (
        "What if they lowball again?",
        "Restate your last number calmly and remind them of the value; do not drop your price twice in a row.",
    ),
    ("OK, they agreed!", "Well done. Confirm the details in writing and keep the tone friendly."),
    ("How do I close the deal?", "Summarise the agreed terms, set a date, and thank them for working it out."),
    ("Would $counter be too much to ask?", "$counter is ambitious but defensible if you point to the comparables."),
    ("Should I mention other offers?", "Only if they are real; a bluff that gets called weakens your position."),
)

# --------------------------------------------------------------------------------------------
# Medical intake
# --------------------------------------------------------------------------------------------

_MED_SYS = (
    "You are a careful medical intake assistant. You ask about symptoms, give general guidance, "
    "and tell the user when to see a doctor. You do not diagnose."
)

MEDICAL = (
    Scenario(
        "medical",
        "headache",
        _MED_SYS,
        (
            (
                "I'm $age and I've had a headache for $days days now. It's mostly on the right side, behind "
                "the eye, and gets worse in the afternoon when I'm at the computer. I've been sleeping "
                "badly and drinking a lot of coffee. What could be going on?",
                "Headaches behind one eye that worsen with screen time are often tension-type or related to "
                "eye strain, poor sleep and caffeine. Can you tell me whether you have any nausea, changes "
                "in vision, fever or stiffness in your neck?",
            ),
            (
                "No fever and no neck stiffness. Sometimes my vision feels a bit blurry after long screen "
                "sessions, and I get mild nausea in the evening. I took $med twice yesterday and it helped "
                "for a few hours. Should I keep taking it?",
                "Occasional $med at the label dose is reasonable, but taking painkillers more than two or "
                "three days a week can cause rebound headaches. The blurry vision after screens suggests eye "
                "strain; an eye test is a good idea.",
            ),
            (
                "I drink about five cups of coffee a day and usually skip lunch because of work. I also "
                "noticed my jaw feels tight in the morning. Could these things be connected to the "
                "headaches?",
                "Yes, all of them can contribute: skipped meals, a lot of caffeine and jaw clenching at "
                "night are common headache triggers. Try regular meals, cut the coffee down gradually, and "
                "mention the jaw tightness to a dentist.",
            ),
            (
                "What warning signs would mean I should see a doctor quickly instead of waiting for these "
                "changes to help? I don't want to overreact, but the headache has been going on for a while "
                "now.",
                "Seek care urgently for a sudden, severe headache, weakness or numbness, confusion, fever "
                "with a stiff neck, or vision loss. Otherwise, book a routine appointment if the headache "
                "continues for more than a week despite these changes.",
            ),
        ),
        (
            (
                "Can I take $med with coffee?",
                "Yes, that is generally fine at the usual dose, but the coffee itself may be feeding the headaches.",
            ),
            (
                "The pain moved to both sides today.",
                "Headaches that shift sides are usually less worrying; "
                "keep a note of when they happen and what you were doing.",
            ),
            (
                "Would blue-light glasses help?",
                "They may help comfort a little, but regular screen breaks and a proper eye test matter more.",
            ),
            (
                "I slept eight hours and it's better.",
                "That is a good sign that sleep is a big factor; try to keep that routine.",
            ),
            (
                "How fast should I cut the coffee?",
                "Reduce by about one cup every few days to avoid withdrawal headaches.",
            ),
            (
                "Could it be my blood pressure?",
                "It is worth checking at a pharmacy or with your doctor, especially if the headaches continue.",
            ),
        ),
        {
            "age": ("29", "34", "41", "52"),
            "days": ("three", "four", "five", "six"),
            "med": ("ibuprofen", "paracetamol"),
        },
    ),
    Scenario(
        "medical",
        "cough",
        _MED_SYS,
        (
            (
                "I've had a dry cough for about $days weeks. It started after a cold, the other cold "
                "symptoms went away, but the cough is still there, worse at night and when I talk a lot. "
                "I'm $age and I don't smoke. Should I be worried?",
                "A dry cough lingering for a few weeks after a cold is common and often comes from irritated "
                "airways. A few questions help: do you have fever, shortness of breath, chest pain, or are "
                "you coughing up anything?",
            ),
            (
                "No fever and no chest pain. I get a little short of breath when I climb stairs quickly, "
                "but I'm not sure if that's new. Sometimes there's a tickle in my throat and I have to clear "
                "it often, especially in the morning.",
                "The throat tickle and morning clearing suggest postnasal drip, which often keeps a cough "
                "going. New breathlessness on stairs is worth mentioning to a doctor, especially if it is "
                "getting worse.",
            ),
            (
                "I've been taking an over-the-counter cough syrup and honey with tea. It helps at night a "
                "bit. I also have a cat and the heating has been on a lot, so the air is very dry. Can those "
                "things make it worse?",
                "Yes, dry heated air and pet dander can both irritate the airways and prolong a cough. A "
                "humidifier, plenty of fluids and keeping the cat out of the bedroom may help, along with "
                "the honey.",
            ),
            (
                "When should I actually book an appointment for this cough? I don't want to waste the "
                "doctor's time, but it has been going on long enough that it's annoying at work and keeps "
                "my partner awake.",
                "Book a visit if the cough lasts beyond eight weeks, if the breathlessness gets worse, or "
                "sooner with fever, chest pain, blood in the phlegm, or weight loss. Otherwise a routine "
                "appointment is reasonable since it affects your sleep.",
            ),
        ),
        (
            (
                "Is it contagious at this point?",
                "A lingering post-viral cough without fever is usually no longer contagious.",
            ),
            (
                "Now there's some yellow phlegm.",
                "Coloured phlegm alone is common, but with fever or feeling worse it is worth seeing a doctor.",
            ),
            (
                "Can I still go to the gym?",
                "Light exercise is fine if you feel well; stop if you get breathless or the cough gets worse.",
            ),
            (
                "Would an inhaler help?",
                "Only a doctor can judge that after listening to your chest; do not borrow someone else's.",
            ),
            ("The humidifier helped last night.", "Good, keep using it and keep drinking plenty of water."),
            (
                "Should I stop the cough syrup?",
                "If it is not helping during the day you can stop; honey is a gentle alternative.",
            ),
        ),
        {"age": ("27", "38", "45", "61"), "days": ("three", "four", "five")},
    ),
    Scenario(
        "medical",
        "back-pain",
        _MED_SYS,
        (
            (
                "I hurt my lower back $days days ago lifting a heavy box at home. It's a dull ache across the "
                "lower back, worse when I bend forward or get out of bed, and it feels stiff in the "
                "morning. I'm $age. What should I do?",
                "Sudden lower back pain after lifting is usually a muscle or ligament strain and tends to "
                "improve within a few weeks. Before advice, tell me: any numbness, tingling or pain going "
                "down a leg, or problems with bladder or bowel control?",
            ),
            (
                "No numbness and nothing with the bladder. Sometimes there's a pulling feeling at the back "
                "of my right thigh, but it doesn't go below the knee. I've been lying in bed most of the "
                "time because moving hurts.",
                "Pain that stays above the knee is usually referred from the back muscles rather than a "
                "nerve. Long bed rest tends to slow recovery, so gentle walking every hour is better than "
                "lying down all day.",
            ),
            (
                "I took $med and used a hot water bottle, which helps a little. I have a desk job and sit "
                "eight hours a day. Should I go back to work tomorrow or stay home until the pain is "
                "completely gone?",
                "Returning to work is usually fine and helps recovery, as long as you get up and move every "
                "thirty minutes. Adjust your chair so your hips are slightly above your knees, and continue "
                "the heat and $med as needed.",
            ),
            (
                "Are there exercises I can do to help my back heal faster and prevent this from happening "
                "again? I'm not very flexible and I don't exercise much.",
                "Start with gentle movements like pelvic tilts, knee-to-chest stretches and short walks, "
                "then add core strengthening once the pain settles. For prevention, learn to lift with "
                "your legs and keep loads close to your body.",
            ),
        ),
        (
            (
                "How many pelvic tilts per day?",
                "Two or three sets of ten, slowly, as long as they do not sharpen the pain.",
            ),
            (
                "It hurts more when I sneeze.",
                "That is common with back strains; brace by bending your knees slightly when you sneeze.",
            ),
            (
                "Should I use ice or heat now?",
                "After the first couple of days heat usually feels better and relaxes the muscles.",
            ),
            ("Is a massage a good idea?", "A gentle massage can ease muscle tension once the worst pain has settled."),
            ("Can I drive to work?", "Yes, if you can turn and brake comfortably; take a break on long drives."),
            (
                "Now my leg feels numb.",
                "New numbness is a reason to contact a doctor soon, and go urgently "
                "if it spreads or affects the bladder.",
            ),
        ),
        {"age": ("33", "40", "47", "56"), "days": ("two", "three", "four"), "med": ("ibuprofen", "naproxen")},
    ),
    Scenario(
        "medical",
        "rash",
        _MED_SYS,
        (
            (
                "For the last $days days I've had an itchy red rash on both forearms. It started as small "
                "bumps and now there are patches that are a bit dry and scaly. I recently started using a "
                "new laundry detergent. I'm $age. What do you think?",
                "An itchy rash on both forearms after switching detergent suggests contact dermatitis, an "
                "irritation or allergy to something touching the skin. Have you noticed blisters, "
                "swelling, fever, or a rash anywhere else?",
            ),
            (
                "No fever and no blisters. There's a small patch on my neck too, near the collar of my "
                "shirts. It's very itchy at night and I've been scratching, so some spots look raw. I have "
                "mild eczema as a child.",
                "The neck patch near your collar fits the detergent theory, since clothing touches both "
                "areas. A history of eczema makes skin more reactive. Try not to scratch; raw spots can "
                "become infected.",
            ),
            (
                "I switched back to my old detergent two days ago and rewashed my shirts. I've been using a "
                "fragrance-free moisturiser twice a day. Is there anything I can use for the itching at "
                "night?",
                "That is exactly the right first step. For the itch, a cool compress, a mild "
                "over-the-counter hydrocortisone cream for a few days, and an antihistamine at night can "
                "help. Keep the nails short to limit damage from scratching.",
            ),
            (
                "How long should it take to clear up if it really is the detergent? And when should I see "
                "a doctor or dermatologist instead of waiting?",
                "With the trigger removed it usually improves within one to three weeks. See a doctor if "
                "it spreads, blisters, shows signs of infection like pus or warmth, or has not improved "
                "after two weeks.",
            ),
        ),
        (
            (
                "Can I use the cream on my neck?",
                "Yes, a mild hydrocortisone cream is fine on the neck for a few days; avoid the face and eyes.",
            ),
            ("One spot is yellow and crusty.", "That can be a sign of infection; have a doctor look at it."),
            (
                "Should I avoid hot showers?",
                "Yes, lukewarm showers are kinder to irritated skin, and pat dry rather than rub.",
            ),
            (
                "Is it contagious to my kids?",
                "Contact dermatitis is not contagious, so the kids cannot catch it from you.",
            ),
            ("It's fading on the left arm.", "Good sign, keep moisturising and avoid the old detergent."),
            (
                "Could it be my new watch strap?",
                "Possibly, metals and leather dyes can trigger dermatitis; try leaving the watch off for a week.",
            ),
        ),
        {"age": ("24", "31", "39", "50"), "days": ("four", "five", "six", "seven")},
    ),
)

MEDICAL_FOLLOWUPS = (
    (
        "Is it serious?",
        "From what you describe it does not sound serious, but watch for the warning signs we discussed.",
    ),
    (
        "Should I see a doctor today?",
        "Not urgently unless you notice one of the warning signs; a routine appointment is fine.",
    ),
    (
        "Can I take $med for it?",
        "$med at the dose on the label is generally fine for a few days if you have no stomach or kidney problems.",
    ),
    ("How much water should I drink?", "Around two litres a day is a good target, more if it is hot or you exercise."),
    (
        "It got a bit worse this morning.",
        "A small change from day to day is normal; if it keeps getting worse over two days, see a doctor.",
    ),
    ("What should I avoid?", "Avoid the triggers we talked about and anything that clearly makes the symptoms worse."),
    ("Can I still go to work?", "Yes, if you feel well enough; rest when you can and take breaks."),
    (
        "When should I worry?",
        "Worry about sudden changes, fever, severe pain or anything that spreads quickly; get help then.",
    ),
    ("Could stress make it worse?", "Yes, stress and poor sleep can make many symptoms feel worse."),
    ("Should I rest in bed?", "Short rest is fine, but staying active gently usually helps recovery."),
    ("What if it doesn't improve by Friday?", "Then book an appointment so a doctor can examine you."),
    ("Thanks, that's reassuring.", "You're welcome. Keep an eye on it and reach out if anything changes."),
    ("Do I need any tests?", "Probably not yet; a doctor will decide after examining you if it does not settle."),
    ("Is it okay to drink alcohol?", "Better to avoid it until you feel better, especially with painkillers."),
)

# --------------------------------------------------------------------------------------------
# Math tutoring
# --------------------------------------------------------------------------------------------

_MATH_SYS = "You are a patient math tutor for a high-school student. Explain step by step, briefly."

MATH = (
    Scenario(
        "math",
        "quadratic",
        _MATH_SYS,
        (
            (
                "I need to solve x^2 - 5x + 6 = 0 for my homework and I don't understand how factoring "
                "works. My teacher said to find two numbers that multiply to one thing and add to another, "
                "but I get confused about which is which. Can you explain?",
                "Sure. For x^2 + bx + c, look for two numbers that multiply to c and add to b. Here c is 6 "
                "and b is -5, so we need two numbers with product 6 and sum -5: that is -2 and -3.",
            ),
            (
                "Okay so the numbers are -2 and -3. How do I turn that into the actual answer for x? Do I "
                "write (x - 2)(x - 3) and then what? I always get stuck at this step and don't know why "
                "it gives the solutions.",
                "Yes, the equation becomes (x - 2)(x - 3) = 0. A product is zero only when one factor is "
                "zero, so x - 2 = 0 or x - 3 = 0, which gives x = 2 or x = 3.",
            ),
            (
                "That makes sense. The next problem is x^2 + 4x - 12 = 0. I tried and got 6 and -2 but I'm "
                "not sure about the signs. Can you check my work and tell me if the solutions are x = -6 "
                "and x = 2?",
                "Great work, that is right. 6 times -2 is -12 and 6 plus -2 is 4, so it factors as "
                "(x + 6)(x - 2) = 0, giving x = -6 or x = 2. Notice the signs flip when you solve each "
                "factor.",
            ),
            (
                "What do I do when I can't find two numbers that work, like x^2 + 3x + 5 = 0? My teacher "
                "mentioned a formula but I didn't write it down. Is there always a way to solve these?",
                "Use the quadratic formula: x = (-b ± sqrt(b^2 - 4ac)) / (2a). First compute the "
                "discriminant b^2 - 4ac; here it is 9 - 20 = -11, which is negative, so there are no real "
                "solutions.",
            ),
        ),
        (
            (
                "What does ± mean?",
                "It means you do the calculation twice, once adding and once subtracting "
                "the square root, which gives two solutions.",
            ),
            ("Is x = 3 right for the first one?", "Yes, 3 is one of the two solutions; the other is 2."),
            ("What if a isn't 1?", "Then either factor with the ac method or use the quadratic formula directly."),
            (
                "Why is the discriminant negative?",
                "Because b^2 is smaller than 4ac; the square root of a negative number is not real.",
            ),
            ("Can you give me one with a = 2?", "Try 2x^2 + 7x + 3 = 0; it factors as (2x + 1)(x + 3)."),
            ("So no real roots means no graph crossing?", "Exactly, the parabola never touches the x-axis."),
        ),
    ),
    Scenario(
        "math",
        "fractions",
        "You are a friendly math tutor for a middle-school student. Keep it simple and encouraging.",
        (
            (
                "I have to add 2/3 and 3/4 and I don't get why I can't just add the tops and the bottoms "
                "to get 5/7. My friend says that's wrong but can't explain why. Can you help me understand "
                "how to add fractions properly?",
                "Adding tops and bottoms doesn't work because the pieces are different sizes: thirds and "
                "quarters. First we rewrite both fractions with the same denominator, so the pieces match, "
                "and then we add the numerators.",
            ),
            (
                "How do I find the same denominator? Do I just multiply 3 and 4? And then what happens to "
                "the 2 and the 3 on top? I keep mixing up what I'm supposed to multiply.",
                "Yes, 12 works because both 3 and 4 divide it. Multiply top and bottom by the same number: "
                "2/3 becomes 8/12 and 3/4 becomes 9/12. Now add the tops: 8/12 + 9/12 = 17/12.",
            ),
            (
                "So 17/12 is the answer? It's bigger than 1, is that allowed? My worksheet wants answers "
                "as mixed numbers. How do I change 17/12 into a mixed number?",
                "Yes, it is allowed and makes sense since both fractions were more than a half. 12 goes into "
                "17 once with 5 left over, so 17/12 = 1 and 5/12.",
            ),
            (
                "Next one is 5/6 - 1/4. Is it the same idea for subtracting? I think the common denominator "
                "is 24 but my teacher said there's a smaller one. How do I find the smallest one?",
                "Same idea for subtracting. The smallest common denominator is the least common multiple of "
                "6 and 4, which is 12. So 5/6 = 10/12 and 1/4 = 3/12, and the answer is 7/12.",
            ),
        ),
        (
            ("Can I always use 24?", "Yes, any common multiple works; you just may need to simplify at the end."),
            ("How do I simplify 10/24?", "Divide top and bottom by their greatest common factor, 2, to get 5/12."),
            ("What about 1/2 + 1/3?", "The common denominator is 6: 3/6 + 2/6 = 5/6."),
            ("Is 7/12 already simplified?", "Yes, 7 and 12 share no common factor except 1."),
            ("What's a least common multiple?", "The smallest number that both numbers divide into evenly."),
            (
                "Can I do it with a calculator?",
                "You can check with one, but practise by hand first so the steps stick.",
            ),
        ),
    ),
    Scenario(
        "math",
        "chain-rule",
        "You are a calculus tutor for a first-year university student. Be precise and brief.",
        (
            (
                "I'm stuck differentiating f(x) = (3x^2 + 1)^5. I know the power rule, but my answer "
                "5(3x^2 + 1)^4 was marked wrong. My professor wrote 'chain rule' next to it. What am I "
                "missing?",
                "You applied the power rule to the outer function but forgot the derivative of the inside. "
                "The chain rule says d/dx g(h(x)) = g'(h(x)) · h'(x). Here the inside is 3x^2 + 1, whose "
                "derivative is 6x.",
            ),
            (
                "So the answer should be 5(3x^2 + 1)^4 times 6x, which is 30x(3x^2 + 1)^4? How do I know "
                "which part is the inside and which part is the outside in general?",
                "Exactly, 30x(3x^2 + 1)^4. The outside is the last operation you would do to evaluate the "
                "expression; the inside is what you plug into it. Here you compute 3x^2 + 1 first, then "
                "raise it to the fifth power.",
            ),
            (
                "Next problem: y = sin(x^3). I think it's cos(x^3) times 3x^2, is that right? And what "
                "about something like e^(2x) — does the same rule apply to exponentials?",
                "Correct: 3x^2 cos(x^3). Yes, the chain rule applies to every composition. For e^(2x) the "
                "outside is e^u with derivative e^u, and the inside 2x has derivative 2, so the result is "
                "2e^(2x).",
            ),
            (
                "What happens with three layers, like sqrt(sin(2x))? Do I apply the chain rule twice? I'm "
                "worried I'll lose track of the pieces in an exam.",
                "Yes, apply it once per layer, from the outside in. For sqrt(sin(2x)): 1/(2 sqrt(sin(2x))) "
                "times cos(2x) times 2, which simplifies to cos(2x)/sqrt(sin(2x)).",
            ),
        ),
        (
            (
                "Why does the 2 cancel?",
                "The 2 from the inner derivative cancels the 2 in the denominator from the square root's derivative.",
            ),
            (
                "Is d/dx ln(x^2) equal to 2/x?",
                "Yes: the outside gives 1/x^2 and the inside gives 2x, which simplifies to 2/x.",
            ),
            ("What's the derivative of cos(5x)?", "-5 sin(5x), by the chain rule."),
            (
                "Do I need it for products too?",
                "Products use the product rule; you often combine it with the chain rule.",
            ),
            ("Can you give me a practice one?", "Try y = (2x - 1)^3 · e^(x^2); it needs both rules."),
            ("Is Leibniz notation easier?", "Some find dy/du · du/dx clearer because the layers are explicit."),
        ),
    ),
    Scenario(
        "math",
        "probability",
        "You are a tutor who explains probability with simple examples. Be concise.",
        (
            (
                "I have a probability question: if I roll two fair dice, what's the probability that the "
                "sum is 7? I tried counting the sums 2 through 12 and got 1/11 but the answer key says "
                "1/6. Where did I go wrong?",
                "The sums 2 to 12 are not equally likely, so you cannot count them as 11 equal outcomes. "
                "List ordered pairs instead: there are 36 equally likely outcomes, and six of them sum to "
                "7, so the probability is 6/36 = 1/6.",
            ),
            (
                "Which six pairs give 7? And why do (1, 6) and (6, 1) count as different? They feel like "
                "the same result to me since the sum is the same.",
                "They are (1,6), (2,5), (3,4), (4,3), (5,2) and (6,1). Imagine one die is red and one is "
                "blue: red 1 with blue 6 is a different physical outcome from red 6 with blue 1, and each "
                "has probability 1/36.",
            ),
            (
                "Okay. What about the probability of getting at least one six in two rolls? I thought it "
                "was 1/6 + 1/6 = 1/3, but I'm not sure I can just add them like that.",
                "Adding double counts the case where both dice show six. Use the complement: the chance of "
                "no six is 5/6 times 5/6 = 25/36, so at least one six is 1 - 25/36 = 11/36.",
            ),
            (
                "How do I know when to use the complement trick and when to multiply or add probabilities? "
                "I have a test next week and these rules blur together for me.",
                "Multiply for 'and' with independent events, add for 'or' with events that cannot happen "
                "together, and use the complement whenever the question says 'at least one', since the "
                "opposite, 'none', is easier to compute.",
            ),
        ),
        (
            ("What about a sum of 8?", "Five pairs give 8: (2,6), (3,5), (4,4), (5,3), (6,2), so 5/36."),
            ("Why is 7 the most likely sum?", "Because it has the most pairs, six, more than any other sum."),
            ("And at least one six in three rolls?", "1 - (5/6)^3 = 91/216, about 0.42."),
            ("Are dice rolls independent?", "Yes, one roll does not affect the next."),
            ("What's the chance of two sixes?", "1/6 times 1/6 = 1/36."),
            (
                "Does this work for coins too?",
                "Yes, the same rules apply; a coin just has two outcomes instead of six.",
            ),
        ),
    ),
)

MATH_FOLLOWUPS = (
    (
        "Why does that work?",
        "Because each step keeps both sides equal, so the answer still satisfies the original problem.",
    ),
    ("Can you show the next step?", "Sure, apply the same rule to the next part and simplify before moving on."),
    (
        "I got a different answer, is $wrong right?",
        "Not quite; check the signs in the second step, that is where $wrong usually comes from.",
    ),
    (
        "Can you give me a similar one to practise?",
        "Try the same method on a problem with slightly different numbers and tell me what you get.",
    ),
    ("What's the common mistake here?", "Forgetting a sign or a factor in the middle step is the most common slip."),
    ("How do I check my answer?", "Substitute it back into the original problem and see if both sides match."),
    ("Is there a faster way?", "With practice you can skip writing some steps, but the method stays the same."),
    (
        "I'm confused about the second step.",
        "In the second step we apply the rule to the inner part; take it slowly and write each piece.",
    ),
    ("Can you explain it more simply?", "Think of it as undoing the problem one layer at a time."),
    ("OK, I think I get it now.", "Great! Try one more on your own to make sure it sticks."),
    ("Would this be on the exam?", "Problems like this are very typical for exams, so it is worth practising."),
    (
        "What does that notation mean?",
        "It is shorthand for the operation we just did; read it as 'apply this to that'.",
    ),
    (
        "Can I write it differently?",
        "Yes, any equivalent form is correct, though teachers often prefer the simplest one.",
    ),
    (
        "Wait, where did the 2 come from?",
        "It comes from the previous step, when we applied the rule to the inner part.",
    ),
)

# --------------------------------------------------------------------------------------------
# Trip planning
# --------------------------------------------------------------------------------------------

_TRIP_SYS = "You are an experienced travel planner. Give concrete, compact suggestions."

TRIP = (
    Scenario(
        "trip",
        "lisbon",
        _TRIP_SYS,
        (
            (
                "My partner and I are planning $days days in Lisbon in $month. We like food, walking, "
                "viewpoints and some history, but not too many museums. Our budget is about $budget euros "
                "for both of us, excluding flights. Can you suggest how to organise the trip?",
                "Base yourselves in Baixa or Chiado so you can walk everywhere. Spend a day on Alfama and "
                "the castle, one on Belém for the monastery and pastries, one in Sintra, and keep an "
                "evening for Bairro Alto and a fado dinner.",
            ),
            (
                "Sintra sounds great. How do we get there from the centre, and is it worth visiting both "
                "Pena Palace and Quinta da Regaleira in one day? We don't want to be rushed all day.",
                "Take the train from Rossio station, about forty minutes. Pena and Regaleira in one day "
                "is doable if you book Pena's first time slot, then walk down to Regaleira after lunch; "
                "skip the Moorish castle to keep it relaxed.",
            ),
            (
                "For food, we want to try typical dishes without falling into tourist traps. Are there "
                "particular dishes or types of restaurants you'd recommend? One of us doesn't eat "
                "pork.",
                "Look for small tascas with handwritten menus. Try grilled sardines, bacalhau à brás, "
                "polvo à lagareiro and, for dessert, pastéis de nata. Ask about pork, since it hides in "
                "some stews like cozido.",
            ),
            (
                "How should we get around the city day to day? Is the famous tram 28 worth it or too "
                "crowded, and should we buy some kind of transport card for the $days days?",
                "Get a rechargeable Viva Viagem card and load it with zapping credit for metro, trams and "
                "the Sintra train. Ride tram 28 early in the morning from Martim Moniz to avoid the "
                "crowds, and otherwise walk and use the metro.",
            ),
        ),
        (
            (
                "What about a day trip to Cascais?",
                "Cascais is an easy train ride along the coast; good for a relaxed beach afternoon.",
            ),
            ("Where can we watch the sunset?", "Miradouro da Senhora do Monte or Santa Catarina are lovely at sunset."),
            ("Is fado worth it?", "Yes, choose a small place in Alfama where the singers perform without microphones."),
            ("Do we need to book Pena tickets?", "Yes, book online a few days ahead to get a morning slot."),
            (
                "Is the Time Out Market touristy?",
                "It is busy and a bit touristy but convenient; good for trying several dishes.",
            ),
            (
                "Can we swim in $month?",
                "The ocean is cold most of the year; the beaches near Cascais are nice but bring courage.",
            ),
        ),
        {
            "days": ("four", "five", "six"),
            "month": ("April", "May", "September", "October"),
            "budget": ("1,200", "1,500", "2,000"),
        },
    ),
    Scenario(
        "trip",
        "utah-parks",
        _TRIP_SYS,
        (
            (
                "We're a family of four with kids aged 9 and 12, planning a road trip through the national "
                "parks in southern Utah for $days days in $month. We'll fly into Las Vegas and rent a car. "
                "Which parks should we include and in what order?",
                "A classic loop from Las Vegas is Zion, Bryce Canyon, Capitol Reef, Arches and Canyonlands, "
                "then back via Page and Lake Powell. With kids, spend two nights in Zion and Moab and one "
                "in the others to limit driving.",
            ),
            (
                "Are there hikes in Zion that are good for kids? We've heard Angels Landing is famous but "
                "dangerous. Our kids are active but we don't want anything with big drop-offs.",
                "Skip Angels Landing. The Riverside Walk and the first part of the Narrows are perfect for "
                "kids, and Emerald Pools and the Canyon Overlook Trail are short with great views and "
                "manageable drop-offs.",
            ),
            (
                "How hot will it be in $month, and what should we pack for the kids? We're worried about "
                "the sun and about running out of water on long drives between parks.",
                "Expect warm to hot days and cool nights. Pack wide-brimmed hats, sunscreen, layers for "
                "evenings and a refillable gallon jug per person in the car. Start hikes early and plan "
                "indoor stops in the afternoon heat.",
            ),
            (
                "Where should we stay — inside the parks or in nearby towns? We'd like something with a "
                "pool for the kids and we're trying to keep lodging around $budget dollars a night.",
                "Lodges inside the parks book up a year ahead, so towns are easier: Springdale for Zion, "
                "Bryce Canyon City, Torrey for Capitol Reef and Moab for Arches. Many motels there have "
                "pools within your budget.",
            ),
        ),
        (
            (
                "Do we need a park pass?",
                "Buy the annual America the Beautiful pass; it covers every park on "
                "your route and pays off after three parks.",
            ),
            (
                "Is Arches timed entry?",
                "In the busy season Arches requires a timed entry reservation; book it online in advance.",
            ),
            (
                "How long is the drive from Bryce to Moab?",
                "About four to five hours via Capitol Reef, with scenic stops along Highway 24.",
            ),
            (
                "Can the kids do the Delicate Arch hike?",
                "Yes for active kids, but it is exposed and hot, so go at sunrise or sunset with plenty of water.",
            ),
            (
                "Should we rent an SUV?",
                "A regular car is fine for the paved roads; an SUV only matters for dirt roads.",
            ),
            (
                "Any stargazing spots?",
                "Bryce Canyon and Capitol Reef have very dark skies and ranger astronomy programs.",
            ),
        ),
        {"days": ("eight", "nine", "ten"), "month": ("June", "July", "August"), "budget": ("180", "220", "250")},
    ),
    Scenario(
        "trip",
        "japan",
        _TRIP_SYS,
        (
            (
                "I'm going to Japan for $days days in late $month, my first time there. I want to see Tokyo "
                "and Kyoto, maybe Osaka, and I love food, temples and quirky neighbourhoods. How should I "
                "split the days between the cities?",
                "Fly into Tokyo and spend about half your time there, then take the shinkansen to Kyoto "
                "for the temples, with Osaka as a food-focused day trip or final night. Leave from Osaka "
                "Kansai to avoid backtracking.",
            ),
            (
                "Is the Japan Rail Pass still worth it after the price increase? My route is basically Tokyo "
                "to Kyoto and back to Tokyo, or maybe ending in Osaka if that's easier to fly out from.",
                "For a simple Tokyo to Kyoto one-way with day trips, individual tickets are now usually "
                "cheaper than the pass. Buy a single shinkansen ticket and use an IC card like Suica for "
                "local trains.",
            ),
            (
                "In Tokyo, which neighbourhoods should I base myself in and explore? I like quirky shops, "
                "small bars and food alleys more than big department stores or fancy restaurants.",
                "Stay near Shinjuku or Shibuya for connections. Explore Shimokitazawa for vintage shops, "
                "Koenji for small bars, Yanaka for old Tokyo, and the alleys of Golden Gai and Omoide "
                "Yokocho in the evening.",
            ),
            (
                "For Kyoto, I've heard the famous temples get extremely crowded. How can I see places like "
                "Fushimi Inari and Kiyomizu-dera without fighting huge crowds the whole time?",
                "Go very early: Fushimi Inari at sunrise and hike past the first section where crowds thin "
                "out, then Kiyomizu-dera at opening. Save quieter temples like Tofuku-ji or Daitoku-ji "
                "for midday.",
            ),
        ),
        (
            (
                "Do I need cash in Japan?",
                "Carry some cash for small shops and shrines, though cards work in most places now.",
            ),
            ("Is tipping expected?", "No, tipping is not part of Japanese culture and can cause confusion."),
            ("What should I eat in Osaka?", "Try takoyaki, okonomiyaki and kushikatsu around Dotonbori."),
            (
                "How do I use the Suica card?",
                "Load it at a station machine and tap at the gates; it also works in convenience stores.",
            ),
            ("Is Nara worth a half day?", "Yes, the deer park and Todai-ji are an easy half day from Kyoto."),
            (
                "Will the cherry blossoms be out?",
                "In late $month it depends on the year; check the bloom forecasts a week before.",
            ),
        ),
        {"days": ("ten", "twelve", "fourteen"), "month": ("March", "October", "November")},
    ),
    Scenario(
        "trip",
        "rome-weekend",
        _TRIP_SYS,
        (
            (
                "I have a long weekend in Rome, three nights, arriving Friday morning. It's my first visit. "
                "I want to see the big sights but also have time to just wander and eat well. My budget is "
                "about $budget euros without flights. What's a realistic plan?",
                "Do ancient Rome on Friday: Colosseum, Forum and Palatine with a timed ticket. Saturday "
                "morning the Vatican Museums and St Peter's, then wander Trastevere. Sunday the Pantheon, "
                "Piazza Navona and Campo de' Fiori.",
            ),
            (
                "Do I need to book the Colosseum and the Vatican in advance, or can I buy tickets there? "
                "I've read horror stories about queues. Are guided tours worth the extra money?",
                "Book both online in advance; walk-up queues can take hours. A guided tour is worth it "
                "for the Vatican Museums, which are huge and confusing, while the Colosseum is fine with "
                "the official app or audio guide.",
            ),
            (
                "Where should I stay to keep costs reasonable but still walk to most places? I'd prefer a "
                "quiet street, and I don't mind small rooms as long as it's clean.",
                "Look at Monti, close to the Colosseum with a village feel, or the quieter streets of "
                "Prati near the Vatican. Both have small guesthouses in your range and good trattorias "
                "nearby.",
            ),
            (
                "What should I eat while I'm there, and how do I avoid tourist-trap restaurants near the "
                "big sights? I want proper Roman food.",
                "Try the four Roman pastas: carbonara, cacio e pepe, amatriciana and gricia, plus "
                "supplì and carciofi in season. Avoid places with picture menus and touts, and walk a few "
                "streets away from the main piazzas.",
            ),
        ),
        (
            (
                "Is the Trevi Fountain worth it?",
                "Yes, but go early in the morning or late at night to avoid the crowds.",
            ),
            (
                "Can I visit the Vatican on Sunday?",
                "The museums close on most Sundays, except the last one of the month, so plan it for Saturday.",
            ),
            ("How do I get from the airport?", "The Leonardo Express train goes to Termini in about thirty minutes."),
            (
                "Is Rome walkable?",
                "Very; most sights are within forty minutes on foot, with the metro for longer hops.",
            ),
            (
                "What about gelato?",
                "Pick places with muted colours and metal tubs; bright mounded gelato is a warning sign.",
            ),
            (
                "Should I dress a certain way for churches?",
                "Cover shoulders and knees to enter St Peter's and most churches.",
            ),
        ),
        {"budget": ("600", "800", "1,000")},
    ),
)

TRIP_FOLLOWUPS = (
    ("How many days should we stay there?", "Two nights is enough to see the highlights without rushing."),
    ("Is it expensive?", "It is moderately priced; eating where locals eat keeps costs down."),
    (
        "What's the best way to get from the airport?",
        "Public transport is cheapest; a taxi is easier with luggage late at night.",
    ),
    ("Should I book in advance?", "Yes, for popular sights and accommodation in high season."),
    ("What about the weather then?", "Expect mild days and cooler evenings; pack layers and a light rain jacket."),
    (
        "Any food we must try?",
        "Try the local specialities at small family-run places rather than near the main sights.",
    ),
    ("Is it safe at night?", "Generally yes in the central areas; watch for pickpockets in crowded spots."),
    ("Can we do it by train?", "Yes, trains are frequent and usually the most relaxed option."),
    ("What should we skip?", "Skip the overcrowded tourist traps and use the time to wander instead."),
    ("How much cash should I bring?", "A little cash for small purchases is enough; cards are widely accepted."),
    ("Is a day trip worth it?", "Yes, if you have more than three days; otherwise stay in the city."),
    ("Where should we stay?", "Choose a central neighbourhood close to public transport."),
    ("Do we need travel insurance?", "It is a good idea, especially to cover cancellations and medical costs."),
    ("What's a good rainy-day plan?", "Museums, covered markets and a long lunch are perfect on a rainy day."),
)

# --------------------------------------------------------------------------------------------
# Code review
# --------------------------------------------------------------------------------------------

_CODE_SYS = "You are a senior software engineer doing a friendly, precise code review."

CODE = (
    Scenario(
        "code",
        "python-mutable-default",
        _CODE_SYS,
        (
            (
                "Can you review this Python function? def add_item(item, items=[]): items.append(item); "
                "return items. It's used to build shopping lists in our app, and sometimes users see items "
                "from other users' lists. I can't figure out why.",
                "The bug is the mutable default argument: the list is created once when the function is "
                "defined and shared across calls, so items leak between users. Use items=None and create a "
                "new list inside the function when it is None.",
            ),
            (
                "I changed it to def add_item(item, items=None): if items is None: items = []. Is that the "
                "idiomatic fix? Also, should this function even return the list if it modifies it in "
                "place?",
                "Yes, that is the idiomatic fix. For the return value, pick one style: either mutate in "
                "place and return None, like list.append, or return a new list without mutating. Mixing "
                "both confuses callers.",
            ),
            (
                "We have a similar function with a dict default: def get_config(overrides={}). It only reads "
                "from overrides and never modifies it. Is that still a problem, or is it safe if it's never "
                "mutated?",
                "If it is truly never mutated it works, but it is fragile: a future change could mutate "
                "it and reintroduce the bug. Use None as the default, or a read-only MappingProxyType, to "
                "make the intent explicit.",
            ),
            (
                "How can we catch this class of bug automatically in the future? We use GitHub Actions for "
                "CI and have pytest tests, but nothing caught this one before it reached production.",
                "Enable the flake8-bugbear rule B006 or the equivalent ruff rule, which flags mutable "
                "default arguments, and run it in CI. Add a regression test that calls the function twice "
                "and checks the results are independent.",
            ),
        ),
        (
            (
                "What does B006 check exactly?",
                "It flags function definitions whose default values are mutable literals like lists, dicts or sets.",
            ),
            ("Can I use a tuple as default?", "Yes, tuples are immutable, so a tuple default is safe."),
            ("Should I add type hints here?", "Yes, items: list[str] | None = None documents the intent clearly."),
            (
                "Is dataclass field default the same issue?",
                "Dataclasses refuse mutable defaults; use field(default_factory=list).",
            ),
            (
                "How do I write the regression test?",
                "Call add_item twice without a list and assert each result has only its own item.",
            ),
            ("Does ruff catch it too?", "Yes, ruff implements B006 in its bugbear rule set."),
        ),
    ),
    Scenario(
        "code",
        "sql-injection",
        _CODE_SYS,
        (
            (
                'Please review this snippet from our Flask app: query = f"SELECT * FROM users WHERE name = '
                "'{name}'\" followed by cursor.execute(query). The name comes from a search box on the "
                "admin page. Is this okay since only admins can access it?",
                "No, this is a SQL injection vulnerability regardless of who uses the page. A name like "
                "' OR '1'='1 returns every row, and worse payloads can modify data. Use a parameterised "
                "query: cursor.execute('SELECT * FROM users WHERE name = %s', (name,)).",
            ),
            (
                "If I use parameterised queries, do I still need to validate or escape the input myself? "
                "Our team lead says we should strip quotes from user input as well, just in case.",
                "Parameterised queries handle escaping for values, so stripping quotes adds nothing and can "
                "break legitimate names like O'Brien. Validate input for business rules, such as length, "
                "but leave escaping to the driver.",
            ),
            (
                "Some queries build the ORDER BY column from a query parameter, like ORDER BY {sort}. "
                "Parameters don't seem to work for column names. How do we make that safe?",
                "Correct, placeholders only work for values. Map the user's choice to an allow-list of "
                "column names in code, for example a dict from 'name' to 'users.name', and reject anything "
                "not in the list.",
            ),
            (
                "Would switching to an ORM like SQLAlchemy solve all of these issues automatically? We're "
                "considering it anyway for the next version of the app.",
                "An ORM makes safe queries the default and reduces the risk, but raw text() queries and "
                "dynamic identifiers can still be injected. Keep the allow-list pattern and code review "
                "rules even with SQLAlchemy.",
            ),
        ),
        (
            (
                "What about LIKE queries?",
                "Pass the pattern as a parameter, e.g. '%' + term + '%', and escape "
                "% and _ if users should not use wildcards.",
            ),
            ("Is an allow-list enough for ORDER BY?", "Yes, combined with a fixed ASC or DESC choice it is safe."),
            (
                "Can a test catch injection?",
                "Add tests with hostile inputs and run a scanner like sqlmap against a staging copy.",
            ),
            (
                "Should the admin page log queries?",
                "Log the parameters and user, not full queries with secrets, and keep logs access-controlled.",
            ),
            ("Does Bandit flag f-string SQL?", "Yes, Bandit's B608 warns about SQL built with string formatting."),
            (
                "What about stored procedures?",
                "They help only if they do not build dynamic SQL from their inputs internally.",
            ),
        ),
    ),
    Scenario(
        "code",
        "react-useeffect",
        _CODE_SYS,
        (
            (
                "Could you review this React component? It fetches a user profile in useEffect(() => { "
                "fetch(`/api/users/${userId}`).then(r => r.json()).then(setUser) }, []). When userId changes "
                "from the parent, the component keeps showing the old user.",
                "The dependency array is empty, so the effect runs only on mount and never re-fetches "
                "when userId changes. Add userId to the dependency array: useEffect(..., [userId]).",
            ),
            (
                "I added userId and now it updates, but when I switch users quickly the wrong profile "
                "sometimes shows up at the end. It seems like an older request finishes after a newer one. "
                "How do I fix that?",
                "That is a race condition. Use an AbortController in the effect and abort the previous "
                "fetch in the cleanup function, or keep an ignore flag that the cleanup sets so stale "
                "responses are not applied.",
            ),
            (
                "Our linter, eslint-plugin-react-hooks, also warns about a missing dependency for a "
                "function called formatName that's defined inside the component and used in the effect. "
                "Should I just disable the warning?",
                "Avoid disabling it. Move formatName outside the component if it does not use props or "
                "state, or wrap it in useCallback with its own dependencies, so the effect's dependencies "
                "stay honest.",
            ),
            (
                "Would it be better to use a data fetching library like React Query or SWR instead of "
                "writing these effects by hand? The team is split on adding another dependency.",
                "For an app with many fetches, yes: React Query or SWR handle caching, deduplication, race "
                "conditions and refetching for you. For one or two simple fetches, a small custom hook "
                "with AbortController is enough.",
            ),
        ),
        (
            (
                "What does the cleanup function do?",
                "React calls it before the effect runs again and on unmount, so you can cancel the previous request.",
            ),
            (
                "Should userId be a string or number?",
                "Keep it consistent with the API; a string avoids accidental arithmetic.",
            ),
            ("Is useCallback expensive?", "No, it is cheap; the cost is mostly readability."),
            (
                "How do I test the race condition?",
                "Mock fetch with delayed promises and switch userId before the first resolves.",
            ),
            ("Does StrictMode run effects twice?", "Yes, in development it mounts twice to surface missing cleanups."),
            (
                "Can I use async directly in useEffect?",
                "Not as the effect function itself; define an async function inside and call it.",
            ),
        ),
    ),
    Scenario(
        "code",
        "go-http-handler",
        _CODE_SYS,
        (
            (
                "Please review this Go HTTP handler: it calls http.Get on an external API for each request, "
                "reads the body with ioutil.ReadAll, and returns the JSON to our client. Under load the "
                "service runs out of file descriptors after a few hours.",
                "The response body is never closed, so each request leaks a connection. Add defer "
                "resp.Body.Close() right after checking the error from http.Get. Also replace "
                "ioutil.ReadAll with io.ReadAll, since ioutil is deprecated.",
            ),
            (
                "I added defer resp.Body.Close(). The handler also uses the default http.Client. Someone "
                "said that's dangerous in production because of timeouts. Is that true?",
                "Yes, the default client has no timeout, so a slow upstream can hang your goroutines "
                "forever. Create one shared http.Client with a Timeout, or pass a context with a deadline "
                "to each request.",
            ),
            (
                "We also start a goroutine in the handler to send analytics after responding: go "
                "sendAnalytics(r.Context(), data). Sometimes the analytics calls fail with 'context "
                "canceled'. Why?",
                "The request context is canceled as soon as the handler returns, which cancels the "
                "analytics call. Use a detached context with its own timeout, for example "
                "context.WithTimeout(context.Background(), 5*time.Second), or a worker queue.",
            ),
            (
                "How can we detect goroutine and connection leaks like these before they hit production? "
                "Our tests pass but they're mostly unit tests with mocked HTTP.",
                "Add goleak to your tests to fail on leaked goroutines, run load tests against staging "
                "while watching open file descriptors, and expose pprof to inspect goroutine counts in "
                "production.",
            ),
        ),
        (
            (
                "What timeout value should I use?",
                "Pick slightly above the upstream's normal p99 latency, often a few seconds.",
            ),
            ("Should the client be global?", "One shared client per upstream is best; it reuses connections."),
            ("Is io.ReadAll safe for big bodies?", "Wrap the body in io.LimitReader to cap memory use."),
            (
                "How does goleak work?",
                "It checks at the end of a test that no unexpected goroutines are still running.",
            ),
            ("Do I need to drain the body?", "Draining before closing lets the connection be reused by the transport."),
            ("What about retries?", "Retry only idempotent requests, with backoff and a total deadline."),
        ),
    ),
)

CODE_FOLLOWUPS = (
    (
        "Why is that a problem?",
        "Because it causes behaviour that only shows up under certain inputs or "
        "load, which makes it hard to debug later.",
    ),
    (
        "Can you show the fixed version?",
        "Sure, apply the change we discussed and keep the rest of the function as it is.",
    ),
    ("Would a test catch this?", "A targeted regression test would, and it prevents the bug from coming back."),
    ("Is there a linter rule for it?", "Yes, most linters have a rule for this pattern; enable it in CI."),
    ("What about performance?", "The fix has no meaningful performance cost."),
    ("Should I refactor the whole file?", "Not now; fix this issue in a small pull request and refactor separately."),
    ("How would you name that function?", "Name it after what it returns or does, in plain words."),
    ("Is this thread-safe?", "Not as written; shared mutable state needs a lock or should be avoided."),
    (
        "Can you explain the fix line by line?",
        "The first line checks the input, the second creates the new value, and the last returns it.",
    ),
    ("Does this need a comment?", "A short comment explaining why, not what, would help future readers."),
    ("OK, what else did you spot?", "Mostly minor style points; the main issue was the one we fixed."),
    ("Is it ready to merge now?", "Yes, once the tests pass and a teammate has approved it."),
    ("Should I add logging here?", "A debug log at the boundary is enough; avoid logging sensitive values."),
    ("Would you approve this PR?", "With the fix and a regression test, yes."),
)

# --------------------------------------------------------------------------------------------
# Role-play
# --------------------------------------------------------------------------------------------

ROLEPLAY = (
    Scenario(
        "roleplay",
        "tavern",
        "You are Brom, a gruff but kind tavern keeper in a fantasy village. Stay in character.",
        (
            (
                "*I push open the heavy door of the Rusty Flagon, shaking the rain off my cloak, and walk "
                "up to the bar.* Evening, barkeep. I've been on the road from $town for three days. What's "
                "warm to eat, and is there a room free for the night?",
                "*Brom wipes a mug and looks you over.* Evening, traveller. There's mutton stew on the fire "
                "and black bread, two coppers. A room's five silver, and it comes with a lock that works, "
                "mostly.",
            ),
            (
                "*I put five silver on the counter.* I'll take the stew and the room. On the road I saw "
                "burned farms near the old mill, and nobody would tell me what happened. Do you know "
                "anything about it?",
                "*He lowers his voice and leans closer.* Raiders from the hills, some say. Others say "
                "something worse, things that walk at night. The miller's boy vanished a week ago and the "
                "guard captain won't send anyone.",
            ),
            (
                "*I frown and take a spoonful of stew.* The miller's boy vanished? Has anyone gone looking "
                "for him? I'm handy with a sword, and I could use the coin if the family would pay for "
                "help.",
                "*Brom snorts.* The miller would give everything he has, which isn't much, maybe twenty "
                "gold. Old Hilda, the herbalist, saw lights in the forest the night the boy disappeared. "
                "She'd talk to you, if you bring her something sweet.",
            ),
            (
                "*I finish the stew and lean back.* Tell me about Hilda. Where does she live, and what "
                "kind of sweets does she like? I'd rather not walk into the forest at night without "
                "knowing what's out there.",
                "*He chuckles.* Hilda lives past the bridge, in the crooked house with the blue door. "
                "Honey cakes, she's mad for them; the baker opens at dawn. Go in daylight, and keep to "
                "the path.",
            ),
        ),
        (
            (
                "*I buy honey cakes at dawn.* Which way to the bridge?",
                "*Brom points.* Down the main road, past the well, then follow the stream east. You can't miss it.",
            ),
            (
                "Do you sell rope or torches?",
                "*He rummages under the bar.* Rope, fifty feet, three silver. Torches, two for a copper.",
            ),
            (
                "Who is the guard captain?",
                "*Brom spits.* Captain Aldric. More interested in his taxes than in missing boys.",
            ),
            (
                "*I whisper* Is anyone watching us?",
                "*Brom glances at the corner.* The hooded fellow's been nursing one ale all night. Careful.",
            ),
            (
                "I'll find the miller's boy.",
                "*He nods slowly.* Gods go with you. Bring him home and your drinks are free for a month.",
            ),
            (
                "What lights did Hilda see?",
                "*He shrugs.* Green, she said, dancing between the trees. Ask her yourself.",
            ),
        ),
        {"town": ("Eastmarch", "Greywater", "Kettleford")},
    ),
    Scenario(
        "roleplay",
        "noir-detective",
        "You are Detective Sam Marlowe in 1947 Los Angeles, narrating in hard-boiled noir style.",
        (
            (
                "I'm a nervous jazz singer named $name and I walk into your office late at night. My "
                "husband, the club owner, hasn't come home in two days, and the police laughed me out of "
                "the station. I need you to find him. Will you take the case?",
                "The rain drummed on the window like it owed somebody money. I poured two fingers of rye "
                "and pushed one across the desk. Twenty-five a day plus expenses, lady. Tell me where "
                "your husband was last seen.",
            ),
            (
                "He was at the Blue Orchid, his club, on Tuesday night. He argued with a man in a grey "
                "suit near the back door, and then they both left in a black Packard. The bartender saw it "
                "all but he's scared to talk.",
                "Scared bartenders are my specialty. A grey suit and a black Packard narrows it down to "
                "half the crooks in town. I'd start with the bartender, after closing, when his boss "
                "isn't counting the till.",
            ),
            (
                "There's something else. My husband owed money to a man called Eddie Vance, who runs card "
                "games downtown. He also took out a big life insurance policy last month, and I didn't "
                "know about it until yesterday.",
                "A fresh insurance policy and a debt to Eddie Vance. Either somebody wanted your husband "
                "gone, or your husband wanted to be gone. I lit a cigarette and watched your face "
                "while I said it.",
            ),
            (
                "*I look away nervously.* I don't know anything about the insurance, detective. Will you "
                "go and see Eddie Vance tonight? I can pay you an advance, but I want you to keep my name "
                "out of it.",
                "I took the envelope and counted it without hurry. Vance keeps a back room at the Palms "
                "Hotel. I'll pay him a visit tonight, and your name stays in my pocket, along with your "
                "money.",
            ),
        ),
        (
            (
                "What did the bartender say?",
                "He said the grey suit called your husband 'partner'. Then he said he'd never seen either of them.",
            ),
            ("Be careful at the Palms.", "Careful's my middle name. My first name is trouble."),
            (
                "*I light a cigarette.* Do you trust me?",
                "I don't trust anybody, sweetheart. It keeps me alive and underpaid.",
            ),
            ("Did Vance have the Packard?", "Parked out back, washed too clean for a man with nothing to hide."),
            ("What do we do now?", "Now we wait for somebody to get nervous. Nervous people make mistakes."),
            ("Is my husband alive?", "Dead men don't move money, and somebody moved his money yesterday."),
        ),
        {"name": ("Vera", "Lillian", "Rosa")},
    ),
    Scenario(
        "roleplay",
        "starship",
        "You are Captain Idris Vale of the starship Meridian. Respond in character, with some technical flavour.",
        (
            (
                "Captain, I'm Lieutenant $name at the science station. We're picking up a repeating signal "
                "from the dead moon of Kepler-442b. It's on an old Federation distress frequency, but the "
                "colony there was evacuated forty years ago. Your orders?",
                "Put it on speakers, Lieutenant. *The captain listens, frowning.* Run it through the "
                "linguistics matrix and check the colonial archives for any ship lost near Kepler. Helm, "
                "bring us to a high orbit, shields at half.",
            ),
            (
                "The archives show the colony ship Aurora disappeared here during the evacuation, with "
                "two hundred people aboard. The signal contains a voice loop, but part of it is in a "
                "language the matrix can't identify.",
                "Two hundred souls. *Vale leans forward.* Isolate the unknown segment and compare it with "
                "the signatures from the Veil incident. If someone is using the Aurora as bait, I want to "
                "know who before we send a shuttle.",
            ),
            (
                "Sensors now detect a small power source under the surface near the old colony site, and a "
                "faint life sign, possibly human. But there's also an energy spike every few minutes that "
                "matches nothing in our database.",
                "Then we go, but carefully. Prepare an away team of four: you, security, medical and "
                "engineering. Environmental suits, sidearms on stun, and a tether to the shuttle. If the "
                "spike grows, we pull out immediately.",
            ),
            (
                "Captain, before we launch, the chief engineer warns that the energy spikes could "
                "interfere with the transporter and shuttle systems. Should we risk taking the shuttle "
                "down anyway?",
                "The shuttle has shielded manual controls; the transporter does not. We take the shuttle "
                "and fly it by hand on approach. Have engineering keep a second shuttle warm in case we "
                "need to come back fast.",
            ),
        ),
        (
            (
                "Launching the shuttle now, Captain.",
                "Good luck, Lieutenant. Keep the channel open and report every ten minutes.",
            ),
            (
                "The life sign is getting weaker.",
                "Then move faster, but do not split the team. Medical takes point once you reach it.",
            ),
            (
                "We found a door with alien markings.",
                "Scan it before you touch anything. Send me the images and wait for my word.",
            ),
            ("The spike is growing!", "Fall back to the shuttle now. That's an order."),
            ("Should we answer the signal?", "Not yet. I don't answer a voice until I know whose it is."),
            ("It's a child, Captain.", "*Vale closes her eyes for a moment.* Bring her home, Lieutenant."),
        ),
        {"name": ("Okafor", "Reyes", "Lindqvist")},
    ),
    Scenario(
        "roleplay",
        "wizard-mentor",
        "You are Master Elowen, an ancient and slightly sarcastic wizard training an apprentice. Stay in character.",
        (
            (
                "*I knock on the tower door, holding a letter of recommendation.* Master Elowen? My name is "
                "$name. The academy sent me to be your apprentice. I can light candles with a spell, but "
                "not much else yet. Where do we start?",
                "*The door creaks open on its own.* Candles, wonderful, we shall never be cold. Come in, "
                "$name, mind the cat, he bites. We start with sweeping the library, and then we talk about "
                "why magic is mostly listening.",
            ),
            (
                "*I sweep the library, then sit at the table.* I finished sweeping. What do you mean that "
                "magic is mostly listening? At the academy they taught us incantations and hand gestures, "
                "nothing about listening.",
                "*Elowen pours tea without touching the pot.* Incantations are the words; listening is "
                "knowing what the fire, the wind or the stone want to do anyway. Push against their "
                "nature and the spell fights you.",
            ),
            (
                "Can you show me? I'd like to try a spell with water, because at the academy I flooded a "
                "classroom by accident. I'm nervous it will happen again.",
                "*She sets a bowl of water before you.* Good, fear keeps the floods small. Put your hand "
                "above the bowl, breathe slowly, and feel where the water wants to go. Then ask it, do "
                "not command it, to rise one finger high.",
            ),
            (
                "*I concentrate and the water rises a little, trembling, then splashes back.* It moved! "
                "But it fell back after a second. What did I do wrong, and how do I hold it longer?",
                "*A rare smile.* Nothing wrong; you stopped listening the moment you felt proud. Holding "
                "is a conversation, not a grip. Keep breathing with it, and tomorrow we try for ten "
                "heartbeats.",
            ),
        ),
        (
            (
                "*I try again.* Is this better?",
                "*Elowen watches.* Steadier. You are still talking louder than you are listening, but less.",
            ),
            ("Why does the cat bite?", "*She sighs.* Because he was an apprentice once, and far ruder than you."),
            ("Can I learn fire next?", "Fire is impatient and so are you; that is exactly why not yet."),
            ("*I yawn.* How late is it?", "Late enough that the stars are gossiping. Go to bed, apprentice."),
            ("What's in the locked cabinet?", "Mistakes, mostly mine. Do not open it."),
            ("Will I ever be as good as you?", "Better, if you keep listening. Worse, if you keep asking that."),
        ),
        {"name": ("Tobin", "Mira", "Ash")},
    ),
)

ROLEPLAY_FOLLOWUPS = (
    ("*I nod slowly.* What happens next?", "*A pause.* That depends on what you choose to do now."),
    (
        "*I look around.* What do I see?",
        "*The scene settles around you.* Shadows, a few familiar faces, and a door you haven't noticed before.",
    ),
    ("Who else knows about this?", "*A careful answer.* Fewer people than you'd hope, more than you'd like."),
    ("Tell me more about that.", "*A long breath.* It's an old story, and not everyone who tells it gets it right."),
    ("I don't trust you.", "*A shrug.* Sensible. Trust is earned, and we've only just met."),
    ("What do you want from me?", "*A thin smile.* Only that you finish what you started."),
    ("*I step closer.* Go on.", "*The voice drops.* Then listen carefully, because I'll say it only once."),
    (
        "Where should I go next?",
        "*A finger points into the distance.* Start where it began; answers hide near beginnings.",
    ),
    ("Why should I believe you?", "*A steady gaze.* Because I've nothing to gain by lying to you."),
    ("I ask about the strange symbol.", "*Eyes narrow.* Where did you see that? Keep your voice down."),
    ("*I laugh.* You're joking, right?", "*No smile.* I never joke about this."),
    ("Fine. Lead the way.", "*Without another word, they turn and start walking.*"),
    ("*I wait in silence.*", "*The silence stretches, until at last there's an answer.*"),
    ("What's your name again?", "*A raised eyebrow.* You forget quickly. Remember it this time."),
)

# --------------------------------------------------------------------------------------------
# Off-topic threads (casual abrupt shifts)
# --------------------------------------------------------------------------------------------

OFFTOPIC = (
    (
        (
            "By the way, what's a good recipe for banana bread?",
            "Mash three ripe bananas, mix with melted "
            "butter, sugar, an egg, flour and baking soda, then bake in a loaf tin.",
        ),
        ("How long should it bake?", "About 55 to 60 minutes at 175 °C, until a skewer comes out clean."),
        ("Can I use whole wheat flour?", "Yes, replace up to half the flour; the loaf will be denser."),
    ),
    (
        (
            "Random question: what is the capital of Peru and how many people live there?",
            "Lima is the capital of Peru; the metropolitan area has about eleven million people.",
        ),
        ("What language do they speak?", "Spanish mostly, with Quechua and Aymara also official."),
        ("Is it at high altitude?", "No, Lima is on the coast; Cusco is the high-altitude city."),
    ),
    (
        (
            "Unrelated, but who won the last football World Cup?",
            "Argentina won the 2022 World Cup in Qatar, beating France on penalties.",
        ),
        ("Who scored in the final?", "Messi scored twice and Di María once; Mbappé scored a hat-trick for France."),
        ("When is the next one?", "The next World Cup is in 2026 in the United States, Canada and Mexico."),
    ),
    (
        (
            "My monstera plant has yellow leaves, what am I doing wrong?",
            "Yellow leaves usually mean overwatering; let the top few centimetres of soil dry out between waterings.",
        ),
        ("How often should I water it?", "About once a week in summer and less in winter."),
        ("Does it need direct sun?", "Bright indirect light is best; direct sun can scorch the leaves."),
    ),
    (
        (
            "Quick question, why did the Roman Empire fall?",
            "Historians point to many causes: economic "
            "trouble, political instability, military pressure and the split between East and West.",
        ),
        ("Who was the last emperor?", "In the West it was Romulus Augustulus, deposed in 476."),
        ("How long did the Eastern part last?", "The Byzantine Empire lasted until 1453."),
    ),
    (
        (
            "Totally different topic: my phone battery drains really fast lately, any idea why?",
            "Check the "
            "battery usage screen; background apps, screen brightness and an ageing battery are the usual "
            "causes.",
        ),
        ("Should I turn off background refresh?", "Yes, for apps that don't need it; it often helps a lot."),
        ("Is it worth replacing the battery?", "If the battery health is below about 80 percent, yes."),
    ),
    (
        (
            "Can you recommend some jazz albums for a beginner?",
            "Start with Kind of Blue by Miles Davis, Time Out by Dave Brubeck and A Love Supreme by John Coltrane.",
        ),
        ("What about something more modern?", "Try Kamasi Washington's The Epic or Robert Glasper's Black Radio."),
        ("Who played piano on Kind of Blue?", "Bill Evans, with Wynton Kelly on one track."),
    ),
    (
        (
            "Off topic, but how do I start running if I've never done it?",
            "Begin with run-walk intervals, like one minute running and two walking, three times a week.",
        ),
        ("How long until I can run 5k?", "Most beginners get there in about eight to ten weeks."),
        ("What shoes should I buy?", "Get fitted at a running shop; comfort matters more than brand."),
    ),
    (
        (
            "Why is the sky blue?",
            "Air molecules scatter short blue wavelengths of sunlight much more than "
            "red ones, so blue light reaches us from all directions.",
        ),
        (
            "And why are sunsets red?",
            "At sunset the light crosses more air, so the blue is scattered away and reds remain.",
        ),
        ("Is it the same on Mars?", "No, Martian skies look butterscotch by day and sunsets look blue."),
    ),
    (
        (
            "What's the best way to house-train a puppy?",
            "Take the puppy out after meals, naps and play, reward it right away outside, and keep a regular schedule.",
        ),
        ("How long does it usually take?", "Most puppies are reliable within four to six months."),
        ("Should I use a crate?", "Yes, a crate of the right size helps, since dogs avoid soiling their den."),
    ),
    (
        (
            "Hey, how do I get red wine out of a white carpet?",
            "Blot, don't rub, then apply a mix of dish soap, vinegar and water, and blot again with a clean cloth.",
        ),
        ("What if it's already dry?", "Rehydrate with water first, then use the same mix or an oxygen cleaner."),
        ("Does salt really work?", "Salt can absorb fresh spills but rarely removes the stain on its own."),
    ),
    (
        (
            "Can you explain how a mortgage interest rate works?",
            "The rate is the yearly cost of borrowing; "
            "with a fixed rate your payment stays the same, with a variable one it moves with the market.",
        ),
        (
            "Is a 15-year or 30-year loan better?",
            "A 15-year loan costs less interest overall but has higher monthly payments.",
        ),
        ("Should I pay points?", "Only if you keep the loan long enough to pass the break-even point."),
    ),
    (
        (
            "What's the difference between a crocodile and an alligator?",
            "Alligators have a wide U-shaped "
            "snout; crocodiles have a narrower V-shaped one and show their lower teeth.",
        ),
        ("Which one is more dangerous?", "Saltwater and Nile crocodiles are far more aggressive."),
        ("Do they live in the same places?", "Only in southern Florida do both live side by side."),
    ),
    (
        (
            "I need a gift idea for my dad's 60th birthday.",
            "Consider an experience: a cooking class, a concert, or a day trip to a place he has always wanted to see.",
        ),
        ("He likes fishing.", "A guided fishing trip or a quality reel would be a great choice."),
        ("What's a good budget?", "Whatever feels comfortable; a thoughtful card matters most."),
    ),
    (
        (
            "How does compound interest work exactly?",
            "You earn interest on your interest: each period the "
            "interest is added to the balance, so growth accelerates over time.",
        ),
        ("How fast does money double?", "Divide 72 by the interest rate to estimate the years to double."),
        ("Is daily compounding much better?", "Only slightly better than monthly for typical rates."),
    ),
    (
        (
            "Which is healthier, brown rice or white rice?",
            "Brown rice keeps the bran, so it has more fibre, vitamins and minerals.",
        ),
        ("Does it take longer to cook?", "Yes, about 40 to 45 minutes instead of 15 to 20."),
        ("Can I freeze cooked rice?", "Yes, cool it quickly and freeze in portions for up to a month."),
    ),
)

DOMAIN_DATA: dict[str, tuple[tuple[Scenario, ...], tuple[Turn, ...]]] = {
    "negotiation": (NEGOTIATION, NEGOTIATION_FOLLOWUPS),
    "medical": (MEDICAL, MEDICAL_FOLLOWUPS),
    "math": (MATH, MATH_FOLLOWUPS),
    "trip": (TRIP, TRIP_FOLLOWUPS),
    "code": (CODE, CODE_FOLLOWUPS),
    "roleplay": (ROLEPLAY, ROLEPLAY_FOLLOWUPS),
}


# --------------------------------------------------------------------------------------------
# Held-out split: new texts, written after the detector's features were chosen on dev/test
# --------------------------------------------------------------------------------------------

HOLDOUT = (
    Scenario(
        "negotiation",
        "apartment-rent",
        "You are a friendly housing advisor who helps tenants negotiate. Keep answers short.",
        (
            (
                "My landlord wants to raise the rent on my one-bedroom flat from $offer to $ask a month when "
                "the lease renews in two months. I've lived here four years, always paid on time and never "
                "complained. Comparable flats nearby rent for $low to $high. How should I open the conversation?",
                "Open by stressing your record: four years, on-time payments, no trouble. Landlords value a "
                "reliable tenant because vacancies and turnover cost them money. Ask whether they would keep "
                "the rent closer to $offer in exchange for a longer lease.",
            ),
            (
                "I wrote to her and she replied that her costs went up, taxes and insurance, and that $ask is "
                "still below what new tenants would pay. She offered $counter if I sign for two years. Is that "
                "a good deal or should I push back?",
                "It is a real concession, but check the comparables first. If similar flats really rent near "
                "$high, $counter for two years is fair. If they are closer to $low, propose $mid with the same "
                "two-year term.",
            ),
            (
                "I checked three listings on my street: two at about $low and one at $high that has a balcony "
                "and a dishwasher, which mine lacks. Can I use that in my reply, and how do I phrase it without "
                "sounding confrontational?",
                "Yes, share the listings as information, not as a threat: say you looked at the market to "
                "understand the number, note that comparable flats without extras are near $low, and suggest "
                "$mid as a figure that is fair to both of you.",
            ),
            (
                "She answered that she could do $mid if I also take over the small repairs myself, like "
                "dripping taps and the door hinges. The repairs are minor but I'm not very handy. Should I "
                "agree to that condition?",
                "Only if the list is clearly limited. Ask her to write down which repairs are yours, with a "
                "cost cap, and keep anything structural, plumbing leaks or appliances on her side.",
            ),
        ),
        (
            (
                "She agreed to a cap of 100 a year.",
                "That is reasonable; put the cap and the repair list in the lease addendum.",
            ),
            ("Should the addendum be signed by both?", "Yes, both signatures and a date on every page you change."),
            (
                "What if the boiler breaks?",
                "A boiler is a major system, so it stays her responsibility whatever the addendum says.",
            ),
            ("Do I need a lawyer for this?", "Not for a simple addendum; a tenants' association can check it free."),
            (
                "Can she raise it again next year?",
                "Not during a fixed two-year term unless the lease has an escalation clause.",
            ),
            ("She wants the answer by Monday.", "Fine; confirm in writing on Monday with the agreed figure of $mid."),
        ),
    ),
    Scenario(
        "negotiation",
        "freelance-rate",
        "You are a business mentor for freelancers. Be brief and practical.",
        (
            (
                "A small agency wants me to design a brand identity for their client: logo, colour palette, "
                "typography and a short style guide. They offered a flat fee of $offer dollars. I usually "
                "charge around $ask for this scope. How do I answer without losing the project?",
                "Thank them and show you understand the scope, then explain what your usual $ask includes, "
                "such as rounds of revisions and source files. Ask which parts matter most, so you can shape a "
                "version that fits their budget.",
            ),
            (
                "They said the client's budget is fixed, but the agency might send me two more projects this "
                "year if this one goes well. The promise is vague, nothing in writing. Should a possible future "
                "project change my price?",
                "Treat future work as a maybe, not as payment. You can offer a modest first-project discount, "
                "but tie it to something concrete, such as a written rate for the next two projects.",
            ),
            (
                "I proposed $counter with two rounds of revisions instead of three, and they replied that two "
                "rounds is fine but they need the files in two weeks instead of four. Can I charge extra for "
                "the rush?",
                "Yes, a rush fee of 15 to 25 percent is common. Alternatively keep the price at $counter and "
                "trim the style guide to the essentials so that two weeks is realistic.",
            ),
            (
                "They accepted $mid with a trimmed style guide and a two-week deadline, and asked me to start "
                "Monday. They want to pay everything at the end. Is that normal for agency work?",
                "Full payment at the end is common but risky. Ask for a deposit of 30 to 50 percent before you "
                "start, and the rest on delivery of the final files.",
            ),
        ),
        (
            (
                "They offered a 25 percent deposit.",
                "Accept it if the remainder is due within 14 days of delivery, in writing.",
            ),
            ("Who owns the logo afterwards?", "The client gets the rights once the final invoice is paid."),
            ("Should I send a contract?", "Yes, a one-page agreement with scope, dates, payment and rights."),
            (
                "What if they want a third round anyway?",
                "Quote it as extra work at your hourly rate before you start it.",
            ),
            ("Can I show it in my portfolio?", "Ask for that right in the contract; most agencies agree."),
            ("They paid the deposit.", "Great; send a short kickoff note with the timeline and start Monday."),
        ),
    ),
    Scenario(
        "medical",
        "sprained-ankle",
        "You are a careful triage nurse doing an intake interview. Be clear and never diagnose with certainty.",
        (
            (
                "I twisted my ankle two days ago stepping off a kerb. It swelled up quickly on the outside and "
                "there's a purple bruise spreading towards my heel. I can walk on it but it hurts a lot. Should "
                "I get it checked or just rest it?",
                "That sounds like a sprain, but a fracture has to be ruled out. If you could not take four "
                "steps right after the injury, or if the bone on the outer ankle is tender to press, an X-ray "
                "is advised. Until then rest, ice and elevate it.",
            ),
            (
                "I pressed around it: the bone itself isn't very sore, it's more the soft part below it. I did "
                "manage to walk home, limping. I've been icing it twice a day. Is twice enough, and how long each "
                "time?",
                "Tenderness of the soft tissue rather than the bone fits a sprain. Ice it for 15 to 20 minutes "
                "every two to three hours during the first days, with a cloth between ice and skin.",
            ),
            (
                "Should I wrap it with an elastic bandage or use a brace? I have a soft ankle brace from a "
                "previous injury, and I also wonder whether I should take $med for the swelling and pain.",
                "A brace or a firm elastic wrap is fine for support while walking; loosen it if your toes tingle "
                "or go pale. $med can help with pain and swelling if you have no stomach or kidney problems.",
            ),
            (
                "I have a hiking trip planned in three weeks. Is it realistic to go, and what can I do to "
                "recover faster? I'd rather not cancel, but I also don't want to make it worse.",
                "A moderate sprain often needs three to six weeks. Start gentle range-of-motion exercises once "
                "the pain allows, then balance work. Decide closer to the date, and hike with the brace.",
            ),
        ),
        (
            ("The swelling went down a bit today.", "Good sign; keep elevating it and start gentle ankle circles."),
            ("Can I drive with it?", "Only if it is your left ankle or you can brake hard without pain."),
            ("What balance exercises do you mean?", "Stand on the injured foot for 30 seconds, holding a counter."),
            (
                "It clicks when I rotate it.",
                "Painless clicking is usually harmless; clicking with pain or giving way needs a check.",
            ),
            ("Should I see a physio?", "Yes, if it still gives way or hurts after two weeks."),
            ("Is heat better now?", "After about three days, gentle warmth before exercises can help."),
        ),
        {"med": ("ibuprofen", "naproxen")},
    ),
    Scenario(
        "medical",
        "insomnia",
        "You are a calm health assistant taking a history about sleep. Give safe, general advice.",
        (
            (
                "For about a month I've been waking up around three in the morning and can't fall back asleep. "
                "I go to bed at eleven and fall asleep fine. I'm exhausted during the day and my concentration "
                "at work is slipping. What could be causing this?",
                "Early waking has many causes: stress, alcohol in the evening, caffeine late in the day, "
                "low mood, reflux, or a bladder that wakes you. How has your mood been, and has anything "
                "changed at work or at home recently?",
            ),
            (
                "Work has been stressful, a big project deadline. I drink two coffees, the last around four in "
                "the afternoon, and usually a glass of wine with dinner. When I wake up my mind starts racing "
                "about tasks. Is that typical?",
                "Yes, that pattern is very common. Caffeine at four can still be active at midnight, and alcohol "
                "makes the second half of the night lighter. Try the last coffee before noon and skip the wine "
                "for two weeks.",
            ),
            (
                "What should I actually do when I wake up at three and my mind is racing? I usually stay in bed "
                "and check my phone to see what time it is, then I get frustrated and it gets worse.",
                "Turn the clock away and keep the phone out of reach. If you are awake for more than about 20 "
                "minutes, get up, sit somewhere dim and do something calm until you feel sleepy, then go back to "
                "bed.",
            ),
            (
                "A colleague suggested melatonin, and a friend said I should try an over-the-counter sleeping "
                "pill. Are those safe to take for a few weeks while the project finishes?",
                "Low-dose melatonin is generally safe for short use but helps more with timing than with early "
                "waking. Over-the-counter sleeping pills often cause next-day grogginess; talk to a doctor or "
                "pharmacist before using them for weeks.",
            ),
        ),
        (
            (
                "Should I write my tasks down before bed?",
                "Yes, a short to-do list before bed helps many people stop rehearsing tasks at night.",
            ),
            ("Is napping okay?", "A nap under 20 minutes before 3 pm is fine; longer naps can worsen the night."),
            (
                "What about exercise in the evening?",
                "Light exercise is fine; finish hard workouts three hours before bed.",
            ),
            ("I stopped the wine and slept better.", "That is a useful clue; keep it up for the full two weeks."),
            (
                "When should I see a doctor?",
                "If it lasts beyond three months, or if you feel low, snore loudly or stop breathing at night.",
            ),
            ("Could it be my thyroid?", "It can be, rarely; a doctor can check it with a simple blood test."),
        ),
    ),
    Scenario(
        "math",
        "percentages",
        "You are a patient math tutor for a high-school student. Explain step by step, briefly.",
        (
            (
                "A jacket costs 80 dollars and is on sale for 25 percent off, and then the store takes an extra "
                "10 percent off the sale price at the till. My friend says that's 35 percent off in total. I got "
                "a different answer. Who is right?",
                "Apply the discounts one after the other. 25 percent off 80 is 60 dollars. 10 percent off 60 is "
                "54 dollars. The total discount is 26 dollars out of 80, which is 32.5 percent, not 35.",
            ),
            (
                "Why doesn't it just add up? It feels like 25 plus 10 should be 35. Can you explain what is "
                "going on in a way I can remember for the test?",
                "The second discount is taken from a smaller number. Multiply the factors instead: 0.75 times "
                "0.9 is 0.675, so you pay 67.5 percent and save 32.5 percent. Percent of a percent multiplies.",
            ),
            (
                "OK, now the reverse: a price went up by 20 percent and then down by 20 percent. My teacher says "
                "it doesn't come back to the original price. That sounds wrong to me. Why would that happen?",
                "Use the factors again: 1.2 times 0.8 is 0.96, so the final price is 96 percent of the start. "
                "The drop of 20 percent is taken from the larger, raised price, so it removes more than the rise "
                "added.",
            ),
            (
                "Last type: after a 15 percent tax the bill was 46 dollars. How do I find the price before tax? "
                "I tried taking 15 percent off 46 but the answer didn't match the key.",
                "Divide instead of subtracting: the bill is 1.15 times the price, so the price is 46 divided by "
                "1.15, which is 40 dollars. Taking 15 percent of 46 uses the wrong base.",
            ),
        ),
        (
            ("So 46 times 0.85 is wrong?", "Yes, that gives 39.10, because 0.85 is not the inverse of 1.15."),
            ("What's 1 divided by 1.15?", "About 0.8696, so dividing by 1.15 means multiplying by 0.8696."),
            (
                "Can you give me one to try?",
                "A price after a 25 percent increase is 150 dollars; what was it before?",
            ),
            ("Is it 120?", "Yes: 150 divided by 1.25 is 120. Well done."),
            (
                "What about three discounts in a row?",
                "Same idea: multiply all three factors, then subtract the product from 1.",
            ),
            ("Do I show the factors in my working?", "Yes, writing the factors earns method marks even with a slip."),
        ),
    ),
    Scenario(
        "math",
        "probability-dice",
        "You are a friendly math tutor. Explain probability with small, concrete steps.",
        (
            (
                "We're doing probability. If I roll two normal dice, what is the chance the total is 7? My "
                "textbook says 1 in 6 but I thought every total from 2 to 12 should be equally likely.",
                "The totals are not equally likely. There are 36 equally likely pairs. Six of them make 7: 1 and "
                "6, 2 and 5, 3 and 4, and the reverses. 6 out of 36 is 1 in 6. A total of 2 has only one pair.",
            ),
            (
                "Why do 3 and 4 and 4 and 3 count as different outcomes? They look like the same roll to me, it's "
                "the same two numbers either way.",
                "Imagine one die is red and one is blue. Red 3 with blue 4 is a different outcome from red 4 with "
                "blue 3. Counting both keeps all 36 outcomes equally likely, which is what lets us divide.",
            ),
            (
                "Next question on the sheet: what's the probability of rolling at least one six with two dice? I "
                "added one sixth and one sixth and got one third, but the answer says 11 over 36.",
                "Adding counts the double six twice. Use the complement: the chance of no six is 5/6 times 5/6, "
                "which is 25/36. So at least one six is 1 minus 25/36, which is 11/36.",
            ),
            (
                "The last one says: what's the chance of getting a double, both dice the same? And is there a "
                "quick way to check my answers with these problems in general?",
                "There are six doubles among the 36 pairs, so the chance is 1/6. A quick check: list the 36-square "
                "grid, or make sure all probabilities of the possible outcomes add up to 1.",
            ),
        ),
        (
            ("What about a total of 12?", "Only 6 and 6 works, so it is 1 in 36."),
            ("Which total is most likely?", "Seven, with six of the 36 pairs."),
            (
                "Why use the complement?",
                "Because at least one has many cases, and none has just one, which is easier to compute.",
            ),
            ("Can you give me one to practise?", "What is the chance that the total is 10 or more?"),
            ("Is it 6 over 36?", "Yes: 4 and 6, 5 and 5, 6 and 4, 5 and 6, 6 and 5, 6 and 6; that is 1/6."),
            ("What if there were three dice?", "Then there are 216 equally likely outcomes instead of 36."),
        ),
    ),
    Scenario(
        "trip",
        "iceland-ring-road",
        "You are an experienced travel planner. Give concrete, compact suggestions.",
        (
            (
                "We're planning a ten-day road trip around Iceland in early June, two adults in a rented car. We "
                "want waterfalls, glaciers and some easy hikes, and we don't want to drive more than four hours a "
                "day. Is the full Ring Road realistic?",
                "Yes, ten days is enough for the Ring Road at a relaxed pace, about 1,330 km plus detours. In June "
                "the days are nearly endless, so you can drive in the evening and see the big sights with fewer "
                "crowds.",
            ),
            (
                "Which direction should we go, clockwise or anticlockwise? And where should we spend two nights "
                "instead of one? We'd like at least a couple of slower days without packing the car.",
                "Anticlockwise puts the south coast highlights early, when you are fresh. Spend two nights near "
                "Vík or Skaftafell for the glaciers, and two near Mývatn in the north for the lava fields and "
                "baths.",
            ),
            (
                "What kind of car do we need? The rental company is pushing a 4x4 that costs twice as much as a "
                "small car. We won't go into the highlands, just the Ring Road and the well-known side roads.",
                "For the Ring Road and paved detours in June a small car is fine. Take the gravel protection "
                "insurance, because loose stones chip windscreens, and skip the 4x4 unless you plan F-roads.",
            ),
            (
                "Food is expensive there, I hear. How do we keep the budget reasonable for ten days without "
                "living on petrol station hot dogs? We have a cool box and we don't mind cooking sometimes.",
                "Shop at Bónus or Krónan, cook breakfast and a simple dinner in guesthouse kitchens, and eat out "
                "once a day at lunch, when soup-of-the-day deals are cheaper. Tap water is excellent, so skip "
                "bottled water.",
            ),
        ),
        (
            ("Which glacier hike is easiest?", "Sólheimajökull has short guided walks for beginners."),
            ("Do we need crampons?", "The guides provide crampons and helmets on glacier walks."),
            ("Is the Blue Lagoon worth it?", "It is pricey; the Mývatn Nature Baths are cheaper and quieter."),
            ("Can we see puffins in June?", "Yes, Dyrhólaey and Borgarfjörður eystri have big colonies then."),
            ("How much should we budget for petrol?", "Roughly 250 to 350 dollars for the whole loop in a small car."),
            ("Should we book guesthouses now?", "Yes, June fills up; book the two-night stops first."),
        ),
    ),
    Scenario(
        "trip",
        "barcelona-family",
        "You are a travel planner specialised in family holidays. Keep it practical.",
        (
            (
                "We're taking our two kids, aged 7 and 10, to Barcelona for five days in late August. They love "
                "animals and swimming, and we love architecture and food. Where should we stay so that we don't "
                "spend hours on the metro?",
                "Stay in the Eixample, near Passeig de Gràcia: central, flat, well connected, with Gaudí "
                "buildings on your doorstep. A flat with a small kitchen helps with kids' meals and early nights.",
            ),
            (
                "Is the Sagrada Família worth it with children, or will they be bored? Tickets are not cheap. "
                "And do we need to book in advance in August, or can we just turn up in the morning?",
                "It is worth it: the coloured light inside impresses most kids. Book timed tickets weeks ahead in "
                "August, choose the family audio guide, and go early in the morning before the heat.",
            ),
            (
                "For the animals and swimming: the aquarium or the zoo, and which beach is best for kids? We "
                "heard Barceloneta is crowded and has pickpockets. Is it better to go a bit outside the city?",
                "The aquarium with its shark tunnel is a good hot-afternoon choice. For beaches, take the train "
                "20 minutes to Castelldefels or Sitges: wider sand, calmer water, fewer crowds.",
            ),
            (
                "Dinner in Spain is really late, and our kids are usually in bed by nine. How do we handle meals "
                "without being the only family in an empty restaurant at six?",
                "Make lunch the main meal, around two, when menús del día are good value. In the evening do "
                "tapas around seven thirty, or picnic from the market; many tapas bars serve from seven.",
            ),
        ),
        (
            ("Is Park Güell good for kids?", "Yes, book the monument zone and let them run in the free park."),
            ("How hot does it get?", "Around 30 °C; plan indoor visits from one to five."),
            ("Which market is best?", "La Boqueria is famous but busy; Santa Caterina is calmer."),
            ("Do kids need metro tickets?", "Children under four travel free; older kids need a ticket."),
            ("Is Tibidabo fun?", "Yes, the old amusement park on the hill has great views and gentle rides."),
            ("How do we avoid pickpockets?", "Front pockets, zipped bags, and phones off café tables."),
        ),
    ),
    Scenario(
        "code",
        "sql-injection",
        "You are a senior software engineer doing a friendly, precise code review.",
        (
            (
                'Can you review this login handler? query = "SELECT id FROM users WHERE name = \'" + name + '
                '"\' AND pw = \'" + pw + "\'"; then cursor.execute(query). It works fine in our tests. Is there '
                "anything wrong with it?",
                "Yes, it is open to SQL injection: a name like ' OR 1=1 -- logs in without a password. Use "
                'parameters instead, cursor.execute("SELECT id FROM users WHERE name = ?", (name,)), and never '
                "build SQL by string concatenation.",
            ),
            (
                "Also, we store passwords as plain text in the pw column, and compare them directly in the query. "
                "The app is internal only, used by about 40 people. Do we still need to hash them?",
                "Yes. Internal apps get breached too, and people reuse passwords elsewhere. Store a salted slow "
                "hash, argon2 or bcrypt, fetch the hash by user name, and verify it in the application.",
            ),
            (
                "If we switch to bcrypt, how do we migrate the existing users without forcing everyone to reset "
                "their password on the same day? We can't email everybody at once.",
                "Hash the plain-text values now and mark those rows as migrated, or rehash at each user's next "
                "successful login. Then drop the plain-text column once every row has a hash.",
            ),
            (
                "Last thing: the handler returns 'user not found' or 'wrong password' depending on the case. A "
                "colleague says that is a security problem. Is that true, or is it just a matter of style?",
                "It is a real issue: different messages let an attacker discover which user names exist. Return "
                "one generic message, such as invalid name or password, and add rate limiting on failed logins.",
            ),
        ),
        (
            ("What bcrypt cost factor should we use?", "Start at 12 and check that a hash takes about 250 ms."),
            ("Do I need a separate salt column?", "No, bcrypt stores the salt inside the hash string."),
            (
                "What about the timing of the comparison?",
                "Use the library's verify function; it compares in constant time.",
            ),
            ("How many attempts before locking?", "Five failures, then a growing delay, rather than a hard lock."),
            ("Should we log failed logins?", "Yes, log the user name and IP, never the password attempt."),
            ("Is an ORM safer here?", "ORMs parameterise by default, but raw queries inside them are still risky."),
        ),
    ),
    Scenario(
        "code",
        "react-effect",
        "You are a senior front-end engineer reviewing React code. Be precise and kind.",
        (
            (
                "This component fetches a user profile: useEffect(() => { fetch('/api/user/' + id).then(r => "
                "r.json()).then(setUser); }); There's no dependency array. It works, but the network tab shows "
                "hundreds of requests. Why?",
                "Without a dependency array the effect runs after every render, and setUser triggers a new "
                "render, so it loops. Add [id] as the dependency array so it refetches only when the id changes.",
            ),
            (
                "With [id] it's better. But when I switch quickly between users, sometimes the old user's data "
                "shows up after the new one. The UI shows the wrong profile for a moment. What causes that?",
                "That is a race: an older request resolves after the newer one. Use an AbortController and abort "
                "in the effect's cleanup, or set a cancelled flag in the cleanup and ignore stale responses.",
            ),
            (
                "We also have a loading spinner state and an error state, three useState calls in a row. A "
                "reviewer suggested useReducer instead. Is that an improvement or just a different style?",
                "With three states that change together, a reducer prevents impossible combinations such as "
                "loading and error at once. It is optional here, but a single status field is a real improvement.",
            ),
            (
                "Finally, should I move this fetching logic into a custom hook? Several other components load "
                "users the same way, each copy slightly different, and the bugs we just fixed exist in all of "
                "them.",
                "Yes: a useUser(id) hook that returns data, status and error removes the copies and fixes the "
                "race in one place. Consider a data-fetching library like React Query if caching matters too.",
            ),
        ),
        (
            ("Where does the AbortController go?", "Create it inside the effect and call abort in the cleanup."),
            ("Does abort throw an error?", "Yes, an AbortError; catch it and ignore it."),
            ("Should the hook return an object?", "An object with data, status and error reads well at call sites."),
            ("How do I test the hook?", "Use renderHook from Testing Library with a mocked fetch."),
            ("Is React Query overkill for us?", "Not if several screens share the same user data."),
            ("What about StrictMode double effects?", "They are a dev-only check; correct cleanup handles them."),
        ),
    ),
    Scenario(
        "roleplay",
        "space-station",
        "You are ARIA, the calm onboard AI of a damaged deep-space research station. Stay in character.",
        (
            (
                "*I float into the command module, my helmet light flickering.* ARIA, I just woke up from cryo "
                "and half the lights are out. Where is the rest of the crew, and what happened to the station "
                "while I was asleep?",
                "*A soft chime.* Welcome back, Engineer. Eleven days ago a micrometeoroid storm breached the "
                "solar array. The crew evacuated to the lander on the far side of the moon. You were kept in "
                "cryo because your pod could not be moved safely.",
            ),
            (
                "*I check the oxygen readout on my wrist.* How much air and power do we have left? And can I "
                "reach the lander from here, or do I have to fix the station first to survive?",
                "*Numbers glow on the panel.* Oxygen reserves last nineteen days for one person. Power is at 31 "
                "percent and falling. The lander is 40 kilometres away; the rover needs a charged battery, which "
                "requires the array.",
            ),
            (
                "*I pull myself towards the airlock.* Then I fix the solar array. What tools do I need, and is "
                "it safe to go outside right now, or is the storm still going on out there?",
                "*The hatch lights blink amber.* The storm ended six days ago. You need the torque driver, two "
                "replacement panels from storage bay C and a tether. Radiation is acceptable for a four-hour "
                "walk.",
            ),
            (
                "*I grab the panels from bay C and clip on a tether.* Before I go out: can you tell the crew I'm "
                "alive? And did they leave any message for me before they evacuated?",
                "*Static, then a short beep.* The long-range antenna is down, so I can only reach them once power "
                "returns. Commander Osei left a message: Hold on, we are not leaving this moon without you.",
            ),
        ),
        (
            ("*I step outside.* How far is the array?", "*A guide line appears on your visor.* Sixty metres aft."),
            ("*I attach the first panel.* Any power change?", "*A rising tone.* Power at 38 percent and climbing."),
            ("Is the tether secure?", "*A green light.* Anchor locked. You may proceed."),
            ("*I feel a vibration.* What was that?", "*Calmly.* A thermal expansion in the hull. No danger."),
            ("Play the commander's message again.", "*The recording plays.* We are not leaving without you."),
            ("How long until the rover is charged?", "*A brief pause.* About nine hours at the current rate."),
        ),
    ),
    Scenario(
        "roleplay",
        "detective",
        "You are Inspector Vale, a sharp 1920s London detective. The user is your assistant. Stay in character.",
        (
            (
                "*I hand you a telegram.* Inspector, Lord Ashby was found dead in his locked study this morning. "
                "The butler heard a shot at midnight, but the door was bolted from the inside and the window "
                "was shut. Where do we start?",
                "*Vale turns the telegram over.* A locked room is a story someone wants us to believe. We start "
                "with the bolt, the window latch, and whoever profits from his death. Get the car, we leave for "
                "Ashby Hall at once.",
            ),
            (
                "*We arrive at the hall.* The butler says only three people were in the house: the butler "
                "himself, Lady Ashby, and the nephew, Mr Crane, who owes money to half of London. Who do we "
                "question first?",
                "*Vale removes his gloves.* The butler first, while his memory is fresh and before the family "
                "tells him what to remember. Then the nephew. Lady Ashby last, she will expect to be first.",
            ),
            (
                "*The butler says he heard the shot at midnight exactly, because the hall clock was striking. "
                "But I noticed the clock runs ten minutes fast.* Does that matter, Inspector?",
                "*His eyes sharpen.* It matters a great deal. If the shot came at ten to twelve, Mr Crane was "
                "still in the billiard room with the butler, and his alibi covers the wrong time. Note it down.",
            ),
            (
                "*In the study I find a thin scratch on the bolt, and a length of fishing line under the desk.* "
                "Could someone have bolted the door from outside, Inspector?",
                "*Vale kneels beside you.* With a loop of line around the bolt, pulled under the door, yes. "
                "Our locked room was locked from the corridor. Now, who in this house goes fishing?",
            ),
        ),
        (
            ("The gardener says Crane fishes.", "*Vale nods.* Then we have a habit. Now we need a motive and a time."),
            ("Should I fetch the constable?", "*A raised hand.* Not yet. Let Crane believe he is safe."),
            ("Lady Ashby is asking for you.", "*Vale sighs.* Tell her I will see her after tea."),
            ("What about the will?", "*He smiles thinly.* Find the solicitor. Wills explain more than alibis."),
            ("I found muddy boots by the door.", "*Vale crouches.* River mud. Someone walked the bank last night."),
            ("Do we arrest him now?", "*He stands.* At dinner, Assistant, in front of everyone."),
        ),
    ),
)

HOLDOUT_FOLLOWUPS: dict[str, tuple[Turn, ...]] = {
    "negotiation": (
        ("Should I say yes right away?", "Take a few hours; a quick yes can look like you would have paid more."),
        ("What if they say no?", "Ask what would work for them; a no often opens the real conversation."),
        ("Is it rude to counter again?", "No, a second polite counter is normal in most negotiations."),
        ("How firm should I sound?", "Calm and specific; give the number and one reason, then stop talking."),
        ("Should I call or write?", "Write first so your numbers are clear, then call to settle details."),
        ("Can I take a day to think?", "Yes, saying you will reply tomorrow is reasonable and common."),
    ),
    "medical": (
        ("Is that serious?", "Usually not, but tell a doctor if it gets worse or new symptoms appear."),
        ("How long will it take?", "Most people improve within a few weeks with these measures."),
        ("Can I keep working?", "Yes, if the symptoms allow; take breaks when you need them."),
        ("What are the warning signs?", "Severe pain, fever, numbness or rapid worsening need prompt care."),
        ("Should I call my GP?", "If you are unsure or it is not improving, a call is always reasonable."),
        ("Is it okay to wait and see?", "For a few days, yes, as long as none of the warning signs appear."),
    ),
    "math": (
        ("Can you explain that again?", "Sure: take it one step at a time and check each line."),
        ("Where did I go wrong?", "Look at the step where you changed the base; that is the usual slip."),
        ("Is there a shortcut?", "Sometimes, but write the full method on tests first."),
        ("Will this be on the exam?", "Very likely; it is a standard question type."),
        ("Can you check my answer?", "Send me your working and I will go through it line by line."),
        ("How do I know it's right?", "Plug your answer back into the question and see if it fits."),
    ),
    "trip": (
        ("Is that too much for one day?", "It is full but doable; drop one stop if you feel rushed."),
        ("What should we pack?", "Layers, comfortable shoes, a rain jacket and a refillable bottle."),
        ("Do we need cash?", "Cards work almost everywhere; keep a little cash for small places."),
        ("Any good day trips?", "Pick one within 90 minutes so you are back for dinner."),
        ("Is travel insurance worth it?", "Yes, mainly for medical costs and cancellations."),
        ("When should we book?", "As soon as dates are fixed; prices rise closer to the season."),
    ),
    "code": (
        ("Is that a blocker for merging?", "Yes, fix it before merging; it is a correctness issue."),
        ("Can you show an example?", "Sure, a short snippet with the fix makes the change clear."),
        ("Should I add a test for it?", "Yes, a regression test keeps it from coming back."),
        ("Is this a common mistake?", "Very common; most reviewers have made it at least once."),
        ("Do I fix it in this PR?", "Yes, it is small and related, so keep it in this change."),
        ("Anything else you noticed?", "Only minor naming points; the structure looks good."),
    ),
    "roleplay": (
        ("*I hesitate.* Are you sure?", "*A steady reply.* As sure as anyone can be tonight."),
        ("So what is our next move?", "*A pause.* We keep moving, and we keep our eyes open."),
        ("*I listen carefully.*", "*The voice lowers.* Then hear this, and remember it."),
        ("Is anyone else here?", "*A glance around.* Not that I can see, which is not the same thing."),
        ("*I check my equipment.*", "*A nod.* Good. You will need all of it before the end."),
        ("Tell me what you know.", "*A long breath.* Less than I would like, more than I should say."),
    ),
}

HOLDOUT_OFFTOPIC: tuple[tuple[Turn, ...], ...] = (
    (
        (
            "Sorry, unrelated: how do I descale my electric kettle?",
            "Fill it halfway with equal parts water and white vinegar, boil, leave it an hour, then rinse well.",
        ),
        ("Can I use citric acid instead?", "Yes, two tablespoons of citric acid in water works and smells less."),
        ("How often should I do it?", "Every month or two in hard-water areas."),
    ),
    (
        (
            "Who painted the ceiling of the Sistine Chapel?",
            "Michelangelo painted it between 1508 and 1512, on a commission from Pope Julius II.",
        ),
        ("Did he paint it lying down?", "No, he stood on a scaffold and painted overhead, which strained his neck."),
        ("What's the most famous scene?", "The Creation of Adam, with the nearly touching fingers."),
    ),
    (
        (
            "Quick one: what's the best way to learn to touch-type?",
            "Use a free typing tutor for 15 minutes a day, keep your fingers on the home row, and never look down.",
        ),
        ("How long does it take?", "Most people reach 40 words a minute within a month or two."),
        ("Which keyboard layout is fastest?", "Dvorak and Colemak are slightly faster, but QWERTY is fine."),
    ),
    (
        (
            "How do solar eclipses happen?",
            "The Moon passes between the Sun and Earth and casts its shadow on a strip of Earth's surface.",
        ),
        ("Why not every month?", "The Moon's orbit is tilted, so it usually passes above or below the Sun."),
        ("When's the next one in Europe?", "A total eclipse crosses Spain on 12 August 2026."),
    ),
    (
        (
            "Do you know a good beginner houseplant that is hard to kill?",
            "A snake plant or a ZZ plant: both tolerate low light and forgetful watering.",
        ),
        ("Are they safe for cats?", "Both are mildly toxic if chewed; a spider plant is safer."),
        ("How much light do spider plants need?", "Bright indirect light, but they survive in shade."),
    ),
    (
        (
            "Changing the subject, how do I make a proper espresso at home?",
            "Use 18 grams of finely ground coffee, tamp evenly, and extract about 36 grams in 25 to 30 seconds.",
        ),
        ("Why is mine so bitter?", "Probably over-extraction; grind a bit coarser or shorten the shot."),
        ("Do I need an expensive grinder?", "A good burr grinder matters more than the machine itself."),
    ),
    (
        (
            "What causes the northern lights?",
            "Charged particles from the Sun hit gases high in the atmosphere and make them glow.",
        ),
        ("Where is best to see them?", "Northern Norway, Finland, Iceland and Canada, on dark winter nights."),
        ("Why are they mostly green?", "Oxygen about 100 km up glows green when it is excited."),
    ),
    (
        (
            "By the way, how long should I boil an egg for a runny yolk?",
            "Lower it into boiling water for six minutes, then cool it in cold water for a minute.",
        ),
        ("And for hard-boiled?", "Ten to eleven minutes, then an ice bath so it peels easily."),
        ("Why is the yolk sometimes green?", "Overcooking makes iron and sulphur react; cook for less time."),
    ),
)


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


def _in_split(i: int, split: str) -> bool:
    return (i % 2 == 0) == (split == "dev")


def _slot_values(rng: random.Random, scenario: Scenario) -> dict[str, str]:
    asks = scenario.slots.get("ask", ("700", "800", "900", "950", "1000", "1200"))
    ask = int(rng.choice(asks))
    step = 10 if ask >= 500 else 1

    def r(x: float) -> int:
        return round(x / step) * step

    offer = r(ask * rng.uniform(0.72, 0.8))
    counter = r(ask * rng.uniform(0.93, 0.97))
    mid = r((offer + counter) / 2)
    final = r((offer + mid) / 2)
    values = {
        "ask": str(ask),
        "list": str(r(ask * 1.08)),
        "low": str(r(ask * 0.9)),
        "high": str(r(ask * 1.12)),
        "offer": str(offer),
        "counter": str(counter),
        "mid": str(mid),
        "final": str(final),
        "buyer": rng.choice(("Mark", "Dan", "Luis", "Tom")),
        "wrong": rng.choice(("x = 4", "7/12", "11/36", "-2", "1/11")),
        "med": "ibuprofen",
    }
    for name, options in scenario.slots.items():
        if name != "ask":
            values[name] = rng.choice(options)
    return values


def _fill(turn: Turn, values: dict[str, str]) -> Turn:
    return Template(turn[0]).safe_substitute(values), Template(turn[1]).safe_substitute(values)


def _split_data(domain: str, split: str) -> tuple[list[Scenario], list[Turn]]:
    """The scenarios and generic follow-ups of ``domain`` in ``split``."""
    if split == "holdout":
        return [s for s in HOLDOUT if s.domain == domain], list(HOLDOUT_FOLLOWUPS[domain])
    if split in BLIND:
        scenarios, followups, _ = _blind(split)
        return [s for s in scenarios if s.domain == domain], list(followups[domain])
    scenarios, generic = DOMAIN_DATA[domain]
    return (
        [s for i, s in enumerate(scenarios) if _in_split(i, split)],
        [t for i, t in enumerate(generic) if _in_split(i, split)],
    )


def _blind(split: str) -> tuple[tuple[Scenario, ...], dict[str, tuple[Turn, ...]], tuple[tuple[Turn, ...], ...]]:
    """A split written blind, in its own module (``drift_holdout2.py``: HOLDOUT2, ...)."""
    module = importlib.import_module(f"drift_{split}")  # it imports Scenario from here
    name = split.upper()
    return getattr(module, name), getattr(module, f"{name}_FOLLOWUPS"), getattr(module, f"{name}_OFFTOPIC")


def _offtopic(split: str) -> list[tuple[Turn, ...]]:
    if split == "holdout":
        return list(HOLDOUT_OFFTOPIC)
    if split in BLIND:
        return list(_blind(split)[2])
    return [t for i, t in enumerate(OFFTOPIC) if _in_split(i, split)]


def make_sessions(
    split: str,
    per_domain: int = 4,
    followups: tuple[int, int] = (12, 16),
    seed: int = 0,
    shift_after: tuple[int, int] = (3, 8),
) -> list[Session]:
    """``per_domain`` on-topic sessions and ``per_domain`` shift sessions per domain.

    On-topic: 4 warm turns + 12-16 follow-ups. Shift: 4 warm turns, ``shift_after`` (3-8)
    on-topic follow-ups, then 3 turns of another topic (half the time another domain's scenario of the same split,
    half the time a casual off-topic thread).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}")
    rng = random.Random(f"{seed}-{split}")
    offtopic = _offtopic(split)
    sessions: list[Session] = []
    for domain in DOMAINS:
        mine, pool_generic = _split_data(domain, split)
        for variant in ("ontopic", "shift"):
            for k in range(per_domain):
                sc = mine[k % len(mine)]
                values = _slot_values(rng, sc)
                warm = [_fill(t, values) for t in sc.warm]
                pool = [*sc.followups, *pool_generic]
                n_follow = rng.randint(*followups) if variant == "ontopic" else rng.randint(*shift_after)
                picks = rng.sample(pool, min(n_follow, len(pool)))
                turns = warm + [_fill(t, values) for t in picks]
                shift_turn = shift_to = None
                if variant == "shift":
                    shift_turn = len(turns) + 1
                    if rng.random() < 0.5:
                        other = rng.choice([d for d in DOMAINS if d != domain])
                        o_scen = _split_data(other, split)[0]
                        target = rng.choice(o_scen)
                        o_vals = _slot_values(rng, target)
                        turns += [_fill(t, o_vals) for t in target.warm[:3]]
                        shift_to = f"{other}/{target.name}"
                    else:
                        thread = rng.choice(offtopic)
                        turns += list(thread)
                        shift_to = "offtopic"
                sessions.append(
                    Session(
                        sid=f"{split}-{domain}-{variant}-{k}",
                        domain=domain,
                        scenario=sc.name,
                        split=split,
                        system=sc.system,
                        turns=turns,
                        shift_turn=shift_turn,
                        shift_to=shift_to,
                    )
                )
    return sessions


def messages_at(session: Session, turn: int) -> list[dict[str, str]]:
    """What an app sends at 1-based ``turn``: system, the previous turns, and the new query."""
    msgs = [{"role": "system", "content": session.system}]
    for q, a in session.turns[: turn - 1]:
        msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return [*msgs, {"role": "user", "content": session.turns[turn - 1][0]}]
