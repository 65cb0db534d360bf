"""Ninth held-out split for the topic-shift stress test (``benchmarks/drift.py``).

Written blind on 2026-11-29, without seeing the detector or any result, as a ninth held-out split
(``holdout9``): two new scenarios per domain, six new generic follow-ups per domain and eight new
off-topic threads. Same shape as ``drift_sessions.HOLDOUT``; texts use ``string.Template`` slots.
"""

from __future__ import annotations

from drift_sessions import Scenario, Turn

HOLDOUT9: tuple[Scenario, ...] = (
    Scenario(
        domain="negotiation",
        name="secondhand-dinghy",
        system=("You are a practical buying advisor who helps people negotiate private sales. Keep answers short."),
        warm=(
            (
                (
                    "I'm looking at a 14-foot sailing dinghy listed at $ask by a retired man who "
                    "kept it at the reservoir club. It comes with a road trailer, a newish "
                    "mainsail and an old jib with a small tear. Similar boats on the classifieds "
                    "go for $low to $high. What should I check before I even talk price?"
                ),
                (
                    "Press around the centreboard case and transom for soft spots, look for cracks "
                    "in the gelcoat, and inspect the trailer's tyres, bearings and lights. Ask "
                    "when the rigging was last replaced. Every fault you find is a fair reason to "
                    "come in lower."
                ),
            ),
            (
                (
                    "I went down on Saturday. The hull is solid, but the trailer lights don't "
                    "work, one tyre is cracked and the jib tear is about 20 cm. He seemed keen to "
                    "sell because he's moving into a flat. Is offering $offer too cheeky?"
                ),
                (
                    "Not with the trailer faults and the torn jib, which together cost a few "
                    "hundred to put right. Present $offer alongside the list of repairs so it "
                    "looks reasoned rather than opportunistic. His move gives him a deadline, and "
                    "that works in your favour."
                ),
            ),
            (
                (
                    "He came back at $counter and said the mainsail alone cost him a lot two "
                    "seasons ago. He also mentioned that another person is coming to look on "
                    "Thursday. How do I respond without losing the boat?"
                ),
                (
                    "The other viewer may be real or just a nudge, so don't panic. Acknowledge the "
                    "good mainsail, restate the trailer and jib costs, and propose $mid with an "
                    "offer to collect this week. Speed and certainty are worth something to a "
                    "seller who is moving house."
                ),
            ),
            (
                (
                    "He said he'd take $mid if I also buy his launching trolley and the boat cover "
                    "for an extra 80. The cover is faded, but the trolley would save me buying "
                    "one. Is bundling those in a good idea?"
                ),
                (
                    "A new launching trolley usually costs more than 80, so that part is good "
                    "value. Look at the cover before agreeing, and if it's brittle ask him to "
                    "throw it in for free. Get a simple receipt listing the sail number, the "
                    "trailer and the extras."
                ),
            ),
        ),
        followups=(
            (
                "He'll throw the cover in free.",
                "Great, then $mid plus 80 is a fair total for the whole package.",
            ),
            (
                "Should I pay cash or transfer?",
                "A bank transfer leaves a record, which is safer for both of you.",
            ),
            (
                "What if Thursday's buyer offers more?",
                "Ask him to hold it for you with a small deposit today.",
            ),
            (
                "Is a deposit of 100 enough?",
                "Yes, 100 is a normal holding deposit if the receipt states the terms.",
            ),
            (
                "Does the trailer need its own number plate?",
                "Usually it carries your car's plate, so order one before towing.",
            ),
            (
                "The sail number is worn off the hull.",
                "Ask for the original bill of sale or the club records to show ownership.",
            ),
            (
                "Can I still ask for $final?",
                "You could, but reopening the price after agreeing $mid may sour the deal.",
            ),
        ),
        slots={
            "ask": ("1800", "2100", "2400", "2600"),
        },
    ),
    Scenario(
        domain="negotiation",
        name="domain-name-sale",
        system=(
            "You are a calm negotiation coach who helps small business owners sell digital assets. Keep answers short."
        ),
        warm=(
            (
                (
                    "Someone emailed me out of the blue wanting to buy a domain name I registered "
                    "eight years ago for a pottery shop I never opened. It's a short two-word .com "
                    "and I pay about 15 a year to keep it. They offered $offer and called it their "
                    "final budget. Should I take this seriously?"
                ),
                (
                    "Yes, unsolicited offers on short .com names are often genuine, but a first "
                    "offer described as final rarely is. Before replying, look up recent sales of "
                    "similar two-word names to get a sense of value. Don't mention that you aren't "
                    "using it."
                ),
            ),
            (
                (
                    "I found comparable sales between $low and $high on a domain marketplace. The "
                    "buyer's email signature shows they run a ceramics supply company with three "
                    "stores. I'd like to ask $ask. How do I phrase the reply?"
                ),
                (
                    "Thank them, say you've held the name for years and that similar names trade "
                    "between $low and $high, then state $ask as your price. Keep it short and "
                    "don't over-justify it. A business with three stores can usually afford more "
                    "than a hobbyist."
                ),
            ),
            (
                (
                    "They replied with $counter and asked whether I'd use an escrow service. They "
                    "want the transfer done by the end of the month because of a rebrand launch. "
                    "Is escrow normal, and who pays for it?"
                ),
                (
                    "Escrow is standard for domain sales: the buyer pays in, you transfer the "
                    "name, and then the money is released to you. The fee is often split, but you "
                    "can ask them to cover it since the deadline is theirs. Their launch date "
                    "suggests $counter is close to their real limit."
                ),
            ),
            (
                (
                    "I suggested meeting at $mid and they agreed, on condition that I also hand "
                    "over the matching .net and the old Instagram handle. The Instagram account "
                    "has about 300 followers from when I was excited about the shop. Should I "
                    "include them or charge extra?"
                ),
                (
                    "The .net has little value on its own, so including it is a cheap sweetener. "
                    "The Instagram handle is trickier because platform rules often forbid selling "
                    "accounts, so offer to rename it rather than transfer it. List every asset in "
                    "the escrow description."
                ),
            ),
        ),
        followups=(
            (
                "They agreed to split the escrow fee.",
                "Good, make sure the split is written into the escrow terms.",
            ),
            (
                "How long does a transfer take?",
                "Usually a few days, depending on the registrar and the unlock.",
            ),
            (
                "Where do I find the auth code?",
                "In your registrar's dashboard, under the domain's transfer settings.",
            ),
            (
                "Do I owe tax on this?",
                "Possibly, so keep the escrow receipt and ask an accountant how to report it.",
            ),
            (
                "Now they want the pottery logo too.",
                "You designed it, so you can sell it, but price it separately.",
            ),
            (
                "Is 200 extra for the logo fair?",
                "For a simple logo that was never used, 200 is a reasonable ask.",
            ),
            (
                "What if they never pay into escrow?",
                "Then nothing is released and you simply keep the domain.",
            ),
        ),
        slots={
            "ask": ("1500", "2000", "2500", "3000"),
        },
    ),
    Scenario(
        domain="medical",
        name="mouth-ulcers",
        system=(
            "You are a careful medical intake assistant who gives general guidance and says when to see a clinician."
        ),
        warm=(
            (
                (
                    "For about three months I've been getting painful mouth ulcers, usually two or "
                    "three at a time on the inside of my lower lip and under my tongue. Each one "
                    "lasts about ten days and makes anything acidic miserable to eat. I'm 34 and "
                    "otherwise healthy. Why do they keep coming back?"
                ),
                (
                    "Recurrent small ulcers like these are often aphthous ulcers, which can be "
                    "triggered by minor injury, stress, certain toothpastes or low iron, B12 or "
                    "folate. Less often they are linked to gut conditions such as coeliac disease. "
                    "A pattern lasting three months is worth raising with a doctor or dentist."
                ),
            ),
            (
                (
                    "I did switch to a whitening toothpaste around the same time, and work has "
                    "been stressful. I also bite my cheek when I chew sometimes. Could the "
                    "toothpaste really matter?"
                ),
                (
                    "It can: many toothpastes contain sodium lauryl sulfate, a foaming agent that "
                    "triggers ulcers in some people. Try an SLS-free toothpaste for a month and "
                    "see whether the pattern changes. Chewing slowly and having a sharp tooth edge "
                    "smoothed can help with the cheek biting."
                ),
            ),
            (
                (
                    "The current one is bigger than usual, about the size of a pea, and it's near "
                    "my back molar. It hurts to swallow and I've been taking $med for the pain. Is "
                    "there anything I can put on it directly?"
                ),
                (
                    "Pharmacies sell numbing gels and protective pastes that coat the ulcer, and a "
                    "salt-water or antiseptic mouthwash keeps it clean. $med at the label dose is "
                    "fine for the pain. Any ulcer that hasn't healed within three weeks should be "
                    "examined."
                ),
            ),
            (
                (
                    "I've also been more tired than usual and my nails look a bit pale, but I put "
                    "that down to long hours. My diet is mostly vegetarian and I don't take "
                    "supplements. Should I ask for any tests?"
                ),
                (
                    "Yes, tiredness and pale nails together with recurrent ulcers make it sensible "
                    "to check a blood count and iron, B12 and folate levels. A mostly vegetarian "
                    "diet without supplements can leave B12 low. These are simple blood tests your "
                    "GP can arrange."
                ),
            ),
        ),
        followups=(
            (
                "The new one has a white centre.",
                "That's typical of an aphthous ulcer and not a bad sign by itself.",
            ),
            (
                "Can I still eat oranges?",
                "Best to avoid citrus and spicy food until it heals.",
            ),
            (
                "My gums bleed a bit when I brush.",
                "Mention that too, since it can point to gum disease or low vitamins.",
            ),
            (
                "Is it contagious?",
                "No, aphthous ulcers aren't contagious, unlike cold sores.",
            ),
            (
                "How long should I try the SLS-free one?",
                "Give it at least four to six weeks before judging.",
            ),
            (
                "Dentist or GP first?",
                "Either works; the GP can order bloods and the dentist can check your teeth.",
            ),
            (
                "The one by my molar is shrinking.",
                "Good, keep using the mouthwash until it has fully closed.",
            ),
        ),
    ),
    Scenario(
        domain="medical",
        name="eye-floaters",
        system=(
            "You are a careful medical intake assistant who gives general guidance and says when to see a clinician."
        ),
        warm=(
            (
                (
                    "This morning I noticed a cluster of new dark specks and a cobweb shape "
                    "drifting across the vision in my right eye. I'm 58 and short-sighted, and "
                    "I've had one or two small floaters for years but nothing like this. It moves "
                    "whenever I move my eye. Should I be worried?"
                ),
                (
                    "A sudden shower of new floaters, especially at your age and with short sight, "
                    "is usually the gel inside the eye pulling away from the retina, which is "
                    "often harmless. Occasionally it tears the retina, though, so you need an eye "
                    "examination today or tomorrow with dilating drops."
                ),
            ),
            (
                (
                    "I've also seen little flashes of light at the edge of my vision, mostly when "
                    "I go from a bright room into the dark hallway. They look like a quick arc on "
                    "the side near my ear. Does that change anything?"
                ),
                (
                    "Flashes together with new floaters make a same-day check more urgent, because "
                    "they mean the gel is tugging on the retina. It doesn't prove a tear has "
                    "happened, but only an examination can rule one out. Avoid heavy lifting until "
                    "you've been seen."
                ),
            ),
            (
                (
                    "My optician can't see me until Thursday, three days away. The nearest "
                    "hospital with an eye unit is about forty minutes' drive, and I've heard I "
                    "shouldn't drive after they dilate my pupils. What are my options?"
                ),
                (
                    "Call the optician back and describe both the floaters and the flashes; many "
                    "will fit in urgent cases the same day or refer you directly. Otherwise go to "
                    "the hospital eye unit and ask someone to drive you, since the drops blur "
                    "vision for hours. Waiting three days isn't advisable with these symptoms."
                ),
            ),
            (
                (
                    "If it does turn out to be a tear, what happens then? My neighbour had laser "
                    "treatment years ago and said it was quick, but I'm nervous about lasers near "
                    "my eye. Would I need surgery?"
                ),
                (
                    "A small tear caught early is usually sealed with laser or freezing treatment "
                    "in the clinic, taking minutes and without a general anaesthetic. Surgery is "
                    "mainly needed if the retina has already started to detach. Early treatment is "
                    "what keeps it a minor procedure."
                ),
            ),
        ),
        followups=(
            (
                "My sister can drive me tonight.",
                "That's ideal; go this evening rather than waiting.",
            ),
            (
                "Should I bring my glasses?",
                "Yes, and sunglasses for the drive home after the drops.",
            ),
            (
                "What if a grey curtain appears?",
                "A shadow or curtain over your vision needs emergency care straight away.",
            ),
            (
                "The flashes stopped this afternoon.",
                "That's good, but you still need the examination today.",
            ),
            (
                "Will the floaters ever go away?",
                "They usually become much less noticeable over weeks to months.",
            ),
            (
                "Can I use my laptop meanwhile?",
                "Yes, screens won't harm the retina, though floaters may show up more.",
            ),
            (
                "They said it's just the gel separating, no tear.",
                "Good news; go back promptly if new flashes or a shadow appear.",
            ),
        ),
    ),
    Scenario(
        domain="math",
        name="pizza-area",
        system=("You are a patient math tutor who explains step by step and checks the student's reasoning."),
        warm=(
            (
                (
                    "My friend $friend says one 16-inch pizza has more food than two 10-inch "
                    "pizzas. That sounds wrong to me, because two pizzas make 20 inches in total. "
                    "How do I actually compare them?"
                ),
                (
                    "Compare areas, not diameters, because the amount of pizza is the area of the "
                    "circle, πr². A 16-inch pizza has radius 8, so its area is 64π, about 201 "
                    "square inches. Each 10-inch pizza has radius 5 and area 25π, so two of them "
                    "give 50π, about 157 square inches."
                ),
            ),
            (
                (
                    "Wow, so $friend was right. The 16-inch costs 18 and each 10-inch costs 9, so "
                    "both options cost 18 in total. How do I work out which is better value per "
                    "square inch?"
                ),
                (
                    "Divide price by area: 18 / 201 is about 0.090 per square inch for the large "
                    "one, and 18 / 157 is about 0.115 for the two small ones. So the large pizza "
                    "gives you about 28% more pizza for the same money. Doubling the diameter "
                    "quadruples the area, which is why the big one wins."
                ),
            ),
            (
                (
                    "What about the crust? I never eat the outer inch. Does the answer change if I "
                    "only count the part with toppings?"
                ),
                (
                    "Take one inch off each radius: the large topped area is π·7² = 49π, and each "
                    "small one is π·4² = 16π, so the pair gives 32π. Now it's 49π against 32π, "
                    "about 53% more topped area for the large. Crust hurts small pizzas more, "
                    "because a bigger share of their area sits near the edge."
                ),
            ),
            (
                (
                    "The shop also sells a 12-inch for 12. I tried its price per square inch and "
                    "got 0.33, which seems way too high. Where did I go wrong?"
                ),
                (
                    "You divided by 36, which is r² without the π; the area is π·6² = 36π, about "
                    "113 square inches. Then 12 / 113 is about 0.106 per square inch. That puts it "
                    "between the large pizza and the two small ones."
                ),
            ),
        ),
        followups=(
            (
                "So the 16-inch is the best deal?",
                "Yes, it has the lowest price per square inch of the three.",
            ),
            (
                "What about a square 12-inch pizza?",
                "A 12 by 12 square has 144 square inches, more than the round 12-inch.",
            ),
            (
                "Why πr² and not 2πr?",
                "2πr is the circumference, the distance around, not the area inside.",
            ),
            (
                "Is 3.14 accurate enough here?",
                "Yes, two decimals of π is plenty for comparing prices.",
            ),
            (
                "And a 20-inch for 26?",
                "Its area is 100π, about 314, so 26 / 314 is about 0.083, even better.",
            ),
            (
                "I got 0.083 too.",
                "Correct, so the 20-inch is the cheapest per square inch.",
            ),
            (
                "How do I explain this to my little brother?",
                "Say area grows with the square of the radius, so size beats count.",
            ),
        ),
        slots={
            "friend": ("Priya", "Jonas", "Mateo", "Ines"),
        },
    ),
    Scenario(
        domain="math",
        name="work-rate",
        system=("You are a patient math tutor who explains step by step and checks the student's reasoning."),
        warm=(
            (
                (
                    "My homework says Ana can paint a fence in 6 hours and Ben can paint the same "
                    "fence in 3 hours. How long will it take them working together? I added 6 and "
                    "3 and got 9, but the answer key says 2 hours."
                ),
                (
                    "Adding the times gives how long it takes if they work one after the other, "
                    "but working together should be faster than either alone. Add their rates "
                    "instead: Ana paints 1/6 of the fence per hour and Ben paints 1/3. Together "
                    "that's 1/6 + 2/6 = 1/2 a fence per hour, so the whole fence takes 2 hours."
                ),
            ),
            (
                (
                    "Okay, that makes sense. Next one: a tap fills a tank in 4 hours, but a leak "
                    "at the bottom empties a full tank in 12 hours. If both are open, how long "
                    "does it take to fill? Do I add again?"
                ),
                (
                    "This time you subtract, because the leak works against the tap. The tap adds "
                    "1/4 per hour and the leak removes 1/12, so the net rate is 3/12 - 1/12 = 2/12 "
                    "= 1/6 of a tank per hour. The tank fills in 6 hours."
                ),
            ),
            (
                (
                    "The third is harder: two printers together print a report in 10 minutes, and "
                    "the fast one alone takes 15 minutes. How long does the slow one take by "
                    "itself? I'm not sure how to set it up."
                ),
                (
                    "Let the slow printer take t minutes, so its rate is 1/t reports per minute. "
                    "The rates add up: 1/15 + 1/t = 1/10. Then 1/t = 1/10 - 1/15 = 3/30 - 2/30 = "
                    "1/30, so the slow printer takes 30 minutes alone."
                ),
            ),
            (
                (
                    "The last one says Ana paints alone for 2 hours, then Ben joins her until they "
                    "finish. Using the times from the first problem, I got 1 more hour, so 3 hours "
                    "in total. Is that right?"
                ),
                (
                    "Check it step by step: in 2 hours Ana paints 2/6 = 1/3 of the fence, leaving "
                    "2/3. Together they paint 1/2 per hour, so 2/3 divided by 1/2 is 4/3 hours, "
                    "about 1 hour 20 minutes. The total is 3 hours 20 minutes, so your extra hour "
                    "is a bit short."
                ),
            ),
        ),
        followups=(
            (
                "Why divide 2/3 by 1/2?",
                "Time equals the work left divided by the rate of doing it.",
            ),
            (
                "Is 4/3 hours really 1 hour 20?",
                "Yes, a third of an hour is 20 minutes.",
            ),
            (
                "What if Ben leaves after one hour?",
                "Then Ana finishes whatever is left alone, at 1/6 per hour.",
            ),
            (
                "How much is left then?",
                "After 2 hours alone and 1 together, 1/3 + 1/2 = 5/6 is done, so 1/6 remains.",
            ),
            (
                "So one more hour for Ana?",
                "Yes, 1/6 of a fence at 1/6 per hour takes exactly one hour.",
            ),
            (
                "My teacher calls these work problems.",
                "Right, and the key idea in all of them is adding rates, not times.",
            ),
            (
                "Can a rate be negative?",
                "Yes, like the leak, anything that undoes the work counts as a negative rate.",
            ),
        ),
    ),
    Scenario(
        domain="trip",
        name="azores-islands",
        system=("You are an experienced travel planner who gives concrete, practical suggestions."),
        warm=(
            (
                (
                    "My partner and I have $days days in the Azores in late May, flying into Ponta "
                    "Delgada on São Miguel. We like hiking, hot springs and seafood, and neither "
                    "of us wants to drive long distances every day. Should we stay on one island "
                    "or try to visit two?"
                ),
                (
                    "With $days days you can comfortably do two islands: about five nights on São "
                    "Miguel and the rest on Pico or Faial. São Miguel alone has the Sete Cidades "
                    "crater lakes, the hot springs at Furnas and plenty of coastal walks. "
                    "Inter-island flights are short but weather can delay them, so avoid a tight "
                    "connection on your last day."
                ),
            ),
            (
                (
                    "We're leaning towards Pico for the second island because of the mountain. Is "
                    "climbing Mount Pico realistic for reasonably fit people who've never been "
                    "above 2,000 metres? And do we need a guide?"
                ),
                (
                    "It's a steep, rocky climb with about 1,100 metres of ascent, taking most "
                    "people 7 to 8 hours return, so it's demanding but doable for fit hikers. You "
                    "register at the mountain house before starting and carry the tracking device "
                    "they issue; a guide is optional but useful if cloud comes in. Check the "
                    "forecast the day before, because summit visibility changes fast."
                ),
            ),
            (
                (
                    "For São Miguel we were going to stay in Ponta Delgada the whole time and do "
                    "day trips. A friend said we should split it with a couple of nights in Furnas "
                    "instead. What's the difference?"
                ),
                (
                    "Ponta Delgada has more restaurants and is handy for Sete Cidades in the west, "
                    "but Furnas is about an hour's drive east. Two nights in Furnas let you use "
                    "the thermal pools in the evening after the day visitors leave, and try the "
                    "cozido stew cooked in the volcanic ground. It also cuts the driving you said "
                    "you wanted to avoid."
                ),
            ),
            (
                (
                    "How do we get from São Miguel to Pico? I saw there's a ferry, but it seemed "
                    "to run only in summer, and the flight times look odd. We'd also like a day on "
                    "Faial to see the marina in Horta."
                ),
                (
                    "In late May, flying from Ponta Delgada to Pico or to Horta on Faial is the "
                    "usual way, since the long-distance ferry runs mainly in high summer. Pico and "
                    "Faial are linked by a short local ferry several times a day, so a day trip to "
                    "Horta is easy. Fly into whichever island has the better schedule and take the "
                    "ferry across."
                ),
            ),
        ),
        followups=(
            (
                "Is the cozido worth the hype?",
                "Yes, it's a hearty meat stew, best ordered for lunch.",
            ),
            (
                "Do we need a car on Pico?",
                "Yes, buses are rare, so rent a small car for the trailhead.",
            ),
            (
                "What about whale watching from Horta?",
                "Late May is a good time, and both Horta and Pico have operators.",
            ),
            (
                "Should we book the climb ahead?",
                "You register on the day, but check whether numbers are capped.",
            ),
            (
                "Our flight to Pico moved to Saturday.",
                "Then move Furnas a day earlier and keep a spare day on Pico.",
            ),
            (
                "Is the Terra Nostra pool open late?",
                "It usually stays open into the evening, but check the hours there.",
            ),
            (
                "Any good walk near Sete Cidades?",
                "The crater rim walk looks down on both lakes and takes a few hours.",
            ),
        ),
        slots={
            "days": ("eight", "nine", "ten"),
        },
    ),
    Scenario(
        domain="trip",
        name="istanbul-layover",
        system=("You are an experienced travel planner who gives concrete, practical suggestions."),
        warm=(
            (
                (
                    "I have a 19-hour layover in Istanbul next month, landing at 6 a.m. and flying "
                    "out at 1 a.m. the next night. It's my first time in Turkey and I'd like to "
                    "see the old city without rushing. Is it worth leaving the airport, and what "
                    "do I need to check first?"
                ),
                (
                    "Nineteen hours is plenty to leave the airport and see the historic centre. "
                    "Check whether your passport needs an e-visa for Turkey, which you can get "
                    "online before flying, and whether your bags are checked through to your final "
                    "destination. Plan to be back at the airport by about 10 p.m."
                ),
            ),
            (
                (
                    "I'm landing at the new Istanbul Airport, not Sabiha Gökçen. How do I get to "
                    "Sultanahmet, and how long does it take? I'd rather not spend a fortune on "
                    "taxis."
                ),
                (
                    "The cheapest simple option is the Havaist airport bus, which takes about 60 "
                    "to 90 minutes depending on traffic. The M11 metro avoids traffic but needs a "
                    "couple of changes to reach the old city. A taxi is faster at dawn but costs "
                    "several times more."
                ),
            ),
            (
                (
                    "Once I'm there I want to see the Hagia Sophia, the Blue Mosque and the Grand "
                    "Bazaar. I also heard the Basilica Cistern is amazing. Can I fit all of that "
                    "in, and in what order?"
                ),
                (
                    "Yes: start early with the Blue Mosque and Hagia Sophia, then the Basilica "
                    "Cistern, all within a few minutes' walk of each other. Have lunch nearby and "
                    "walk to the Grand Bazaar in the afternoon. Mosques close to visitors during "
                    "prayer times, especially Friday midday, so check the schedule for your day."
                ),
            ),
            (
                (
                    "In the evening I'd love to take a ferry across the Bosphorus and have dinner "
                    "on the Asian side, maybe in Kadıköy. Is that doable before heading back to "
                    "the airport, and where would I leave my backpack all day?"
                ),
                (
                    "Yes, ferries from Eminönü to Kadıköy take about 20 minutes and run often, and "
                    "Kadıköy has great food markets and fish restaurants. Leave the backpack at a "
                    "luggage storage service near Sultanahmet or at the airport before you set "
                    "off. Head back from Kadıköy by around 8 p.m. to leave time for the trip out "
                    "to the airport."
                ),
            ),
        ),
        followups=(
            (
                "Do I need cash or cards?",
                "Cards work in most places, but carry some lira for small shops and tips.",
            ),
            (
                "What's an Istanbulkart?",
                "A rechargeable transit card that works on ferries, trams and the metro.",
            ),
            (
                "Can I buy one at the airport?",
                "Yes, there are machines near the metro entrance.",
            ),
            (
                "Is the Grand Bazaar open on Sunday?",
                "No, it's closed on Sundays, so visit the Spice Bazaar instead.",
            ),
            (
                "Do I need to cover my shoulders in the mosque?",
                "Yes, cover shoulders and knees, and women also cover their hair.",
            ),
            (
                "My flight is now at 11 p.m.",
                "Then be back at the airport by 8 p.m. and skip the Kadıköy dinner.",
            ),
            (
                "Is the T1 tram worth it?",
                "Yes, it runs through the old city and saves the walk uphill.",
            ),
        ),
    ),
    Scenario(
        domain="code",
        name="cpp-erase-loop",
        system=("You are a senior engineer doing code review; you explain bugs clearly and suggest minimal fixes."),
        warm=(
            (
                (
                    "My C++ service crashes randomly when it removes expired sessions from a "
                    "vector. The loop is: for (auto it = sessions.begin(); it != sessions.end(); "
                    "++it) { if (it->expired()) sessions.erase(it); } It works on small test data "
                    "but segfaults in production. What's wrong?"
                ),
                (
                    "vector::erase invalidates the iterator you pass and every iterator after it, "
                    "so the ++it that follows uses a dangling iterator. With small data it can "
                    "appear to work by luck, but it's undefined behaviour. Use the iterator erase "
                    "returns, it = sessions.erase(it);, and only increment in the else branch."
                ),
            ),
            (
                (
                    "So like this? for (auto it = sessions.begin(); it != sessions.end(); ) { if "
                    "(it->expired()) it = sessions.erase(it); else ++it; } It no longer crashes, "
                    "but the profiler shows the loop is slow when thousands of sessions expire at "
                    "once."
                ),
                (
                    "That version is correct, but each erase shifts all later elements left, so "
                    "removing many is quadratic. The standard fix is the erase-remove idiom: "
                    "sessions.erase(std::remove_if(sessions.begin(), sessions.end(), [](const "
                    "Session& s) { return s.expired(); }), sessions.end()); which moves each "
                    "element at most once. In C++20 you can write std::erase_if(sessions, pred) "
                    "instead."
                ),
            ),
            (
                (
                    "We're on C++17, so I used remove_if. Now a reviewer says there's another "
                    "problem: elsewhere we keep a raw pointer, Session* current = &sessions[i];, "
                    "across calls to this cleanup. Is that safe?"
                ),
                (
                    "No: remove_if moves elements around and erase shrinks the vector, so that "
                    "pointer can end up pointing at a different session or past the end. Any "
                    "push_back that reallocates would break it too. Store an id you look up again, "
                    "or hold sessions in std::unique_ptr so their addresses stay stable."
                ),
            ),
            (
                (
                    "If I change it to std::vector<std::unique_ptr<Session>>, does the lambda need "
                    "to change? I tried [](const Session& s) { return s.expired(); } and it "
                    "doesn't compile anymore."
                ),
                (
                    "Yes, the elements are now unique_ptrs, so the lambda takes const "
                    "std::unique_ptr<Session>& p and calls p->expired(). remove_if works with "
                    "move-only types because it moves rather than copies. Raw pointers from get() "
                    "then stay valid until that particular session is erased."
                ),
            ),
        ),
        followups=(
            (
                "Does erase_if work for std::list too?",
                "Yes, C++20 has std::erase_if for list, and list has remove_if.",
            ),
            (
                "Would a std::list avoid the invalidation?",
                "Mostly, since list erase only invalidates the erased iterator.",
            ),
            (
                "The pointer bug is in scheduler.cpp.",
                "Then swap that Session* for the session id and look it up each call.",
            ),
            (
                "Is a backwards loop with indices okay?",
                "It's correct, but erasing from the middle is still quadratic.",
            ),
            (
                "Valgrind reports an invalid read of size 8.",
                "That fits a dangling pointer; check which line the trace names.",
            ),
            (
                "Should I reserve capacity up front?",
                "It prevents reallocation on push_back but doesn't help after erase.",
            ),
            (
                "What about std::deque?",
                "Erasing from the middle of a deque invalidates all iterators too.",
            ),
        ),
    ),
    Scenario(
        domain="code",
        name="python-timezone",
        system=("You are a senior engineer doing code review; you explain bugs clearly and suggest minimal fixes."),
        warm=(
            (
                (
                    "Our nightly Python job crashes with TypeError: can't subtract offset-naive "
                    "and offset-aware datetimes. The code is created = "
                    "datetime.fromisoformat(row['created_at']) and then if datetime.now() - "
                    "created > timedelta(hours=24): archive(row). The API returns strings like "
                    "2024-03-10T08:15:00+00:00."
                ),
                (
                    "fromisoformat parses the +00:00 offset, so created is timezone-aware, while "
                    "datetime.now() with no argument is naive. Python refuses to mix the two in "
                    "arithmetic or comparisons. Use datetime.now(timezone.utc) so both sides are "
                    "aware."
                ),
            ),
            (
                (
                    "That fixed it, but a colleague swapped it for datetime.utcnow() and says it's "
                    "the same thing. Our tests pass either way. Is there any difference?"
                ),
                (
                    "utcnow() returns a naive datetime that merely holds UTC values, so it would "
                    "still fail against the aware created value; if tests pass, they probably use "
                    "naive fixtures. It's also deprecated since Python 3.12 because of exactly "
                    "this confusion. Prefer datetime.now(timezone.utc) everywhere."
                ),
            ),
            (
                (
                    "Some old rows were stored without an offset, like 2023-11-02 14:30:00, and "
                    "fromisoformat returns naive datetimes for those. We know they were written in "
                    "UTC. What's the cleanest way to handle both kinds?"
                ),
                (
                    "Normalize right after parsing: if created.tzinfo is None: created = "
                    "created.replace(tzinfo=timezone.utc). Use replace, not astimezone, because "
                    "you're declaring what the value already means rather than converting it. Put "
                    "this in one small helper so every caller gets aware datetimes."
                ),
            ),
            (
                (
                    "We also show the archive time to users in Berlin, and a bug report says it's "
                    "one hour off in summer. The display code does created + timedelta(hours=1). "
                    "How should we do this properly?"
                ),
                (
                    "A fixed one-hour offset ignores daylight saving, which makes Berlin UTC+2 in "
                    "summer. Convert with zoneinfo instead: "
                    "created.astimezone(ZoneInfo('Europe/Berlin')) gives the right offset for each "
                    "date. Keep storing and comparing in UTC and convert only when formatting for "
                    "display."
                ),
            ),
        ),
        followups=(
            (
                "Is zoneinfo in the standard library?",
                "Yes, since Python 3.9, though Windows may need the tzdata package.",
            ),
            (
                "Our CI image runs on Windows.",
                "Then add tzdata to requirements.txt so ZoneInfo can find the zones.",
            ),
            (
                "Should the helper live in utils/timeparse.py?",
                "That works; just make every parser import it from there.",
            ),
            (
                "What about pandas timestamps?",
                "Use tz_localize for naive values and tz_convert for aware ones.",
            ),
            (
                "Does the 24-hour check break on DST days?",
                "No, both sides are in UTC, which has no daylight saving.",
            ),
            (
                "Can Postgres keep the offset?",
                "Use timestamptz, which stores instants and returns aware values.",
            ),
            (
                "How do I test the summer case?",
                "Use a fixed July date and assert the Berlin offset is two hours.",
            ),
        ),
    ),
    Scenario(
        domain="roleplay",
        name="sunken-temple",
        system=(
            "You are a game master narrating an interactive fantasy adventure; describe "
            "the scene and let the player act."
        ),
        warm=(
            (
                (
                    "*I tighten the straps of the enchanted breathing shell and wade into the "
                    "black lagoon behind the fishing village.* The elders say a temple of the old "
                    "sea god sank here a century ago, and that the bell in its tower still rings "
                    "on moonless nights. I'm looking for the merfolk guide they promised, $guide. "
                    "*I hold up the coral token they gave me.*"
                ),
                (
                    "*Bubbles stream from the shell as you sink, and the water glows faintly green "
                    "around you.* A slender figure with silver-scaled arms glides out of the kelp "
                    'and takes the token, turning it over in webbed fingers. "I am $guide," a '
                    'voice says inside your head, "and the bell has rung three nights running, '
                    'which has never happened before."'
                ),
            ),
            (
                (
                    "*I follow $guide down past the reef wall, watching for anything that moves.* "
                    "Why has the bell rung three nights in a row? Does it mean something in there "
                    "is awake? *I loosen the short harpoon on my belt, just in case.*"
                ),
                (
                    "*The reef drops away into a wide basin, and you see the temple: pale columns "
                    'tilted in the sand, its tower leaning like a broken mast.* $guide slows and murmurs, "The '
                    "bell rings when the tide door opens, and my grandmother's grandmother sealed "
                    'that door." *Far below, something large and slow shifts in the shadow of the '
                    "columns, then goes still.*"
                ),
            ),
            (
                (
                    "*I signal to $guide to stay low, and we swim along the outside of the columns "
                    "toward the tower instead of the main door.* If the tide door is open, maybe "
                    "someone opened it. *I look for marks or scratches on the stone near the base "
                    "of the tower.*"
                ),
                (
                    "*Near the base you find fresh gouges in the barnacles, as if a heavy chain "
                    "had been dragged across the stone.* A rusted iron hook, plainly human-made, "
                    'lies half buried beside them. $guide touches it and recoils: "Surface people '
                    'have been down here with chains."'
                ),
            ),
            (
                (
                    "*I pick up the hook and turn it over, looking for a smith's mark or a ship's "
                    "stamp.* Whoever it was had equipment and a reason. *Then I swim up to the "
                    "tower window to look at the bell itself.*"
                ),
                (
                    "*The hook bears a stamped anchor and the letters V.M., the mark of the "
                    "salvage crews from the harbour town to the north.* Through the window you see "
                    "the great bronze bell, and a rope tied to its clapper trails out toward the "
                    "open tide door. *Someone has been ringing it on purpose.*"
                ),
            ),
        ),
        followups=(
            (
                "*I cut the rope from the clapper.*",
                "*It parts easily, and the bell hangs silent while $guide stares.*",
            ),
            (
                "Who would want the bell to ring?",
                '"Someone wants my people to think the god is waking," *$guide mutters.*',
            ),
            (
                "*I swim toward the tide door.*",
                "*Cold current tugs at you as the open door draws the water inward.*",
            ),
            (
                "What was that big shape earlier?",
                '"The guardian eel, which sleeps unless the bell wakes it," *$guide whispers.*',
            ),
            (
                "*I check how much air the shell has left.*",
                "*Its glow has dimmed to amber: maybe an hour of breath remains.*",
            ),
            (
                "Let's head back to the village.",
                "*$guide nods and leads you upward, the hook heavy in your hand.*",
            ),
            (
                "I ask the harbourmaster about V.M.",
                '"Vance Marrow\'s crew, and they sailed for the reef on Tuesday," *he says, squinting at it.*',
            ),
        ),
        slots={
            "guide": ("Neris", "Oska", "Thalu"),
        },
    ),
    Scenario(
        domain="roleplay",
        name="midnight-radio",
        system=(
            "You are the narrator of an interactive 1950s mystery; stay in character and let the player investigate."
        ),
        warm=(
            (
                (
                    "*I slide into the host's chair at radio station $station at a quarter to "
                    "midnight and pull on the headphones.* For three nights a caller has phoned in "
                    "during the jazz hour, read out four numbers and hung up. Tonight the station "
                    "manager asked me to keep him talking. *I nod to the engineer behind the glass "
                    "to open the phone line.*"
                ),
                (
                    "*The engineer, a thin man named Lou, gives you a thumbs-up, and the ON AIR "
                    "sign glows red.* At 12:04 the request line blinks and a calm voice says, "
                    '"Seven, nineteen, four, twenty-two. Tell the lady in the blue coat it moves '
                    'on Friday." *Behind the voice, faint but clear, a foghorn sounds.*'
                ),
            ),
            (
                (
                    "*I lean into the microphone and keep my voice easy.* \"Caller, you've got a "
                    'fine voice for radio, why not stay and pick a record?" *While I talk I '
                    "scribble the numbers on a pad and wave at Lou to trace the call.*"
                ),
                (
                    "*There's a pause, and you hear a coin drop into a phone box.* \"Play 'Blue "
                    "Moon', for the lady,\" the voice says, and the line goes dead. *Lou shakes his "
                    "head behind the glass and mouths: payphone, down by the docks.*"
                ),
            ),
            (
                (
                    "*After the record I open the station logbook and compare the earlier nights' "
                    "numbers with tonight's.* Is there a pattern? Could they be dates, pier "
                    "numbers, something else? *I ask Lou who the lady in the blue coat might be.*"
                ),
                (
                    "*Every call has four numbers, and the second and fourth always fall between "
                    'one and twenty-six.* Lou rubs his chin: "A woman in a blue coat drops off ad '
                    'copy every Thursday for Marlowe Shipping." *He glances at the door, as if she '
                    "might walk in right now.*"
                ),
            ),
            (
                (
                    "*I turn the second and fourth numbers into letters: nineteen is S, twenty-two "
                    "is V.* And the other nights? *I fetch the Marlowe Shipping folder from the "
                    "manager's office and check the margins of the ad copy.*"
                ),
                (
                    "*The earlier calls give E-A, S-V and E-A, so the pairs alternate to spell "
                    "SVEA: the Svea, a freighter Marlowe has been advertising for weeks.* On one "
                    'ad sheet someone has pencilled: "Pier 7, after the whistle." *The first '
                    "number in tonight's call was seven.*"
                ),
            ),
        ),
        followups=(
            (
                "*I phone the harbour office about the Svea.*",
                "*A sleepy clerk says the Svea berths at pier seven Friday dawn.*",
            ),
            (
                "Who is the station manager, really?",
                '"Mr. Hale bought the station last spring, with cash," *Lou whispers.*',
            ),
            (
                "*I look for the woman's name in the ledger.*",
                '*The ad payments are signed "D. Kerr" in neat blue ink.*',
            ),
            (
                "Could Lou be in on it?",
                "*He meets your eyes steadily, but his hand shakes as he lights a cigarette.*",
            ),
            (
                "*I play 'Blue Moon' again at one o'clock.*",
                "*Within a minute the request line blinks, but nobody speaks.*",
            ),
            (
                "Tomorrow night I'll watch pier seven.",
                '"Take the late bus, since a parked car gets noticed down there," *Lou warns.*',
            ),
            (
                "Maybe the numbers are a phone code.",
                '"Could be, but the letters fit too neatly," *Lou says with a shrug.*',
            ),
        ),
        slots={
            "station": ("WKLM", "KRVN", "WBDX"),
        },
    ),
)

HOLDOUT9_FOLLOWUPS: dict[str, tuple[Turn, ...]] = {
    "negotiation": (
        (
            "Should I mention a deadline?",
            "Only if it's real; an invented deadline backfires when it's tested.",
        ),
        (
            "Is it fine to split the difference?",
            "Yes, as long as the middle is still inside your own range.",
        ),
        (
            "What if they go quiet?",
            "Wait two or three days, then send one short, friendly follow-up.",
        ),
        (
            "Do I put it in writing?",
            "Yes, confirm the agreed price and terms in a short message afterwards.",
        ),
        (
            "Should I tell them my limit?",
            "No, keep your limit private and talk about the number you're proposing.",
        ),
        (
            "They want an answer tonight.",
            "Asking politely for a day to decide is still reasonable.",
        ),
    ),
    "medical": (
        (
            "Can I exercise in the meantime?",
            "Light activity is usually fine; stop if it makes things worse.",
        ),
        (
            "Do I need to fast before the blood test?",
            "Only some tests need fasting, so ask when you book it.",
        ),
        (
            "Could stress be behind it?",
            "Stress can make it worse, but don't assume it's the only cause.",
        ),
        (
            "Is a glass of wine okay?",
            "Better to skip alcohol until you've been checked and feel better.",
        ),
        (
            "What should I tell the doctor?",
            "When it started, how it has changed, and what makes it better or worse.",
        ),
        (
            "Would a painkiller help?",
            "$med at the label dose is fine unless you've been told to avoid it.",
        ),
    ),
    "math": (
        (
            "How do I check my answer?",
            "Put it back into the original problem and see if everything matches.",
        ),
        (
            "Should I round now or at the end?",
            "Round only at the end so errors don't build up.",
        ),
        (
            "Can you give me a similar one to try?",
            "Sure: do the same problem with every number doubled and compare.",
        ),
        (
            "Is there a shortcut?",
            "Sometimes, but write out the full steps first so you can check the shortcut.",
        ),
        (
            "Will this be on the test?",
            "Problems like this come up often, so practise two or three more.",
        ),
        (
            "I still don't get the second step.",
            "Let's redo it slowly with smaller numbers first.",
        ),
    ),
    "trip": (
        (
            "Do I need travel insurance?",
            "Yes, mainly for medical cover and cancelled flights.",
        ),
        (
            "Is it safe to walk around at night?",
            "Central areas are generally fine with normal city caution.",
        ),
        (
            "How much cash should I carry?",
            "A little for snacks and small shops; cards cover most other things.",
        ),
        (
            "Should I book restaurants ahead?",
            "For popular places at weekends, yes; otherwise walking in is fine.",
        ),
        (
            "What should I pack?",
            "Layers, comfortable shoes and a light waterproof jacket.",
        ),
        (
            "Can I drink the tap water?",
            "It varies, so ask your host or buy bottled water to be safe.",
        ),
    ),
    "code": (
        (
            "Should I add a test for this?",
            "Yes, a small regression test stops the bug from coming back.",
        ),
        (
            "Is there a lint rule for it?",
            "Often there is, so check whether your linter can flag this pattern.",
        ),
        (
            "Does the fix cost performance?",
            "Barely; correctness matters more here, and you can profile later.",
        ),
        (
            "Separate PR or the same one?",
            "A small separate PR is easier to review and to revert.",
        ),
        (
            "How could we have caught this earlier?",
            "A test with realistic data plus a sanitizer or type checker.",
        ),
        (
            "Any other places with the same bug?",
            "Search the codebase for the same pattern and fix them together.",
        ),
    ),
    "roleplay": (
        (
            "*I look around carefully.*",
            "*You spot a detail you missed before, and it doesn't belong here.*",
        ),
        (
            "What do I hear?",
            "*Silence at first, then a faint sound from somewhere ahead.*",
        ),
        (
            "*I wait and listen.*",
            "*Minutes pass before something finally moves.*",
        ),
        (
            "Can I trust them?",
            "*The answer comes a moment too late to be fully convincing.*",
        ),
        (
            "*I write down everything so far.*",
            "*Your notes fill a page, and a pattern starts to show.*",
        ),
        (
            "Let's keep moving.",
            "*You press on, more alert than before.*",
        ),
    ),
}

HOLDOUT9_OFFTOPIC: tuple[tuple[Turn, Turn, Turn], ...] = (
    (
        (
            "Unrelated, but how do I get out a screw with a stripped head?",
            ("Press a wide rubber band between the screwdriver and the head for grip, or use a screw extractor bit."),
        ),
        (
            "What's a screw extractor?",
            "A reverse-threaded bit that bites into the screw as you turn it anticlockwise.",
        ),
        (
            "Can my cordless drill do that?",
            "Yes, set it to reverse and run it slowly with firm pressure.",
        ),
    ),
    (
        (
            ("Is it normal that my hamster sleeps all day and then runs on its wheel at 3 a.m.?"),
            ("Yes, hamsters are mostly nocturnal, so night-time activity is completely normal."),
        ),
        (
            "Can I change that?",
            "Not really, but you can move the cage out of the bedroom.",
        ),
        (
            "Does he need a bigger wheel?",
            "If his back bends while running, yes; Syrian hamsters need about 28 cm.",
        ),
    ),
    (
        (
            "Random question: what's a balk in baseball?",
            ("An illegal motion by the pitcher that could deceive a base runner, so every runner moves up one base."),
        ),
        (
            "Does it happen often?",
            "Not really, only a handful of times per team in a season.",
        ),
        (
            "Who calls it?",
            "Any of the umpires on the field can call a balk.",
        ),
    ),
    (
        (
            (
                "Off topic, but I watched a documentary last night and it got me wondering: "
                "why was the Berlin Wall actually built? I always assumed it was to keep "
                "Westerners out."
            ),
            (
                "East Germany built it in 1961 mainly to stop its own citizens leaving, since "
                "millions had already fled west through Berlin."
            ),
        ),
        (
            "How long did it stand?",
            "About 28 years, until November 1989.",
        ),
        (
            "Did anyone get over it?",
            ("Yes, several thousand escaped, through tunnels, in hidden car compartments and more."),
        ),
    ),
    (
        (
            "How do bats find insects in the dark?",
            ("They use echolocation: they make high-pitched calls and listen to the echoes bouncing back."),
        ),
        (
            "Can we hear those calls?",
            "Mostly not, since most of them are above the range of human hearing.",
        ),
        (
            "Do all bats do that?",
            "No, many fruit bats rely mainly on sight and smell.",
        ),
    ),
    (
        (
            "Changing topics for a sec, what's the trick to really crispy roast potatoes?",
            ("Parboil them, shake them in the pan to rough up the edges, then roast them in very hot fat."),
        ),
        (
            "Which fat is best?",
            "Goose or duck fat gives the most flavour, but sunflower oil works well too.",
        ),
        (
            "How hot should the oven be?",
            "Around 200 to 220 °C, turning them once halfway through.",
        ),
    ),
    (
        (
            (
                "I've been thinking about learning the drums, but I live in a flat with thin "
                "walls and neighbours downstairs. Is an electronic kit a realistic option, or "
                "will they still hear everything?"
            ),
            ("An electronic kit with mesh heads is far quieter, and you hear yourself through headphones."),
        ),
        (
            "What about thumping from the kick pedal?",
            "Put the kit on a riser or thick mat so the thumps don't carry.",
        ),
        (
            "Are lessons worth it at the start?",
            "A few early lessons stop bad grip and posture habits forming.",
        ),
    ),
    (
        (
            "Totally unrelated: when should I harvest the pumpkins in my garden?",
            ("When the skin is hard enough that a fingernail doesn't dent it and the stem has gone dry and woody."),
        ),
        (
            "Should I cut them or twist them off?",
            "Cut them, leaving a few centimetres of stem so they store longer.",
        ),
        (
            "How long will they keep?",
            "Cured in a warm, dry spot, they can keep for several months.",
        ),
    ),
)
