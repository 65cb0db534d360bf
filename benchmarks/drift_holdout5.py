"""Fifth held-out split for the topic-shift stress test (``holdout5``).

Written blind (without seeing the detector or any result) on 2026-11-29 as a fifth held-out split: two new
scenarios per domain, new generic follow-ups per domain and new casual off-topic threads, in the same shape as
``drift_sessions.py``. Text uses ``string.Template`` slots; a literal dollar sign (shell code) is written ``$$``.
"""

from __future__ import annotations

from drift_sessions import Scenario, Turn

HOLDOUT5: tuple[Scenario, ...] = (
    # ------------------------------------------------------------------ negotiation
    Scenario(
        domain="negotiation",
        name="buying-a-mare",
        system="You are a level-headed equestrian advisor who helps riders negotiate when buying a horse.",
        warm=(
            (
                "I'm looking at a 9-year-old Connemara mare called Juniper that a private seller has listed for "
                "$ask; she's schooled to novice eventing and has had the same owner for five years. The ad "
                "mentions a small old splint on her left foreleg, and similar ponies around here go for $low to "
                "$high. What should I ask before we even talk about price?",
                "Ask why she is being sold, whether she has had any lameness or time off in the last two years, "
                "and whether the seller will allow a pre-purchase vet exam at your cost. Also ask to see her "
                "loaded into a trailer and handled by a stranger; those answers give you real leverage later.",
            ),
            (
                "I rode her twice and she was lovely, but a bit stiff on the left rein for the first ten minutes. "
                "The seller says that's just her warming up and that another buyer is coming on Saturday. I'd "
                "like to offer $offer, subject to a vet check. Is that too low?",
                "$offer is a firm but defensible opening given the stiffness and the splint, as long as you say "
                "it calmly. Tell her you love the mare, mention both points once, and make the offer conditional "
                "on a clean vet check so it doesn't sound like haggling for sport.",
            ),
            (
                "The vet did a five-stage exam yesterday: flexion was mildly positive on the left fore, and the "
                "X-rays show the splint is fully set. He thinks she'll stay sound for riding club work but maybe "
                "not for higher eventing levels. The seller has now come down to $counter; how do I use the report?",
                "Share the key finding in one sentence: sound for your purpose, but with a limitation any future "
                "buyer would also discount. Then propose $mid, pointing out that you paid for the vet and will "
                "take her as she is, with no further conditions.",
            ),
            (
                "She came back with $final, but only if I collect Juniper this weekend and she gets first refusal "
                "if I ever sell her. I don't own a trailer, and my livery yard only has a stable free from the "
                "15th. Should I accept those terms?",
                "The price is good, so negotiate the logistics rather than the number: ask whether she would keep "
                "the mare until the 15th for a weekly fee, or deliver her for the cost of fuel. First refusal at "
                "market value is harmless, so you can agree to it in writing.",
            ),
        ),
        followups=(
            (
                "She'll keep her until the 15th for 60 a week.",
                "That's fair; write the handover date and the fee on the sales receipt.",
            ),
            ("And the deposit?", "Ten percent is usual, refundable only if the mare fails to arrive sound."),
            ("Do I pay the rest in cash?", "Use a bank transfer so the payment is on record next to the receipt."),
            (
                "What about her saddle and bridle?",
                "Ask whether they're included; a saddle that already fits her can be worth several hundred.",
            ),
            ("Is $final fine with the saddle included?", "Yes, that's good value if the saddle fits her well."),
            ("She wants to keep the winter rugs.", "Let her; rugs are cheap and not worth straining the deal over."),
            (
                "Should I insure her before collection?",
                "Yes, start cover from the handover date, including vet fees and third-party liability.",
            ),
            (
                "What goes on the receipt?",
                "The price, the date, her passport number and any conditions you agreed, signed by both.",
            ),
        ),
        slots={"ask": ("4500", "5200", "6000", "6800")},
    ),
    Scenario(
        domain="negotiation",
        name="vintage-watch-sale",
        system="You are a practical advisor who helps private sellers get a fair price for collectible items.",
        warm=(
            (
                "I inherited my grandfather's 1968 Omega Seamaster with the original box and papers, and I want to "
                "sell it to pay for a course. Recent sales of the same reference with papers seem to range from "
                "$low to $high on auction sites, so I'm thinking of asking $ask. Should I go to dealers or to "
                "private collectors?",
                "Dealers pay less because they need a margin, often 20 to 30 percent under retail, but they pay "
                "quickly and safely. Get one written dealer quote as your floor, then list it on a collectors' "
                "forum at $ask with clear photos of the dial, caseback and movement.",
            ),
            (
                "A collector from the forum answered within a day. He says the crown is a later service "
                "replacement, not original, and offers $offer by bank transfer this week. He's polite but firm; "
                "how should I respond?",
                "Confirm the crown claim with your watchmaker before arguing, because collectors really do "
                "discount non-original parts. If it's true, acknowledge it and counter at $counter, stressing the "
                "papers and the unpolished case, which are rarer than an original crown.",
            ),
            (
                "My watchmaker confirmed the crown was replaced in the 1990s, but the movement was serviced two "
                "years ago and keeps time within ten seconds a day. Meanwhile a dealer in the city offered $mid in "
                "cash. Can I mention that offer to the collector?",
                "Yes, as long as it's true and you say it plainly: you have a cash offer at $mid but would rather "
                "the watch went to a collector. Ask whether he can meet it, and mention the recent service, since "
                "it saves him the cost of one.",
            ),
            (
                "He replied that he can pay $final and cover insured shipping, or $mid if we meet in person and he "
                "inspects it first. I'm a little nervous about meeting a stranger while carrying a valuable watch. "
                "What would you do?",
                "Meeting for the higher figure is reasonable if you do it safely: choose a bank branch, where he "
                "can transfer the money and you see it arrive before handing anything over. If that still feels "
                "uncomfortable, $final with insured shipping after cleared payment is also a fair result.",
            ),
        ),
        followups=(
            ("He agreed to meet at the bank.", "Good; bring the box, the papers and the service invoice with you."),
            ("Should I bring the old crown?", "If you still have it, yes; an original part adds a little value."),
            (
                "What if the transfer takes a day?",
                "Then wait; hand over the watch only once the money shows as cleared.",
            ),
            (
                "Do I need a bill of sale?",
                "Yes, list the model, serial number, price and that it's sold as seen, signed by both.",
            ),
            (
                "He asked for the serial number now.",
                "That's normal; share it so he can check it isn't registered as stolen.",
            ),
            ("Is $mid taxable?", "Usually not for a personal item, but check your country's capital gains rules."),
            (
                "Thursday at the Harbour Street branch works for him.",
                "Great; confirm it by message so you both have the time and place in writing.",
            ),
        ),
        slots={"ask": ("1800", "2200", "2600", "3000")},
    ),
    # ------------------------------------------------------------------ medical
    Scenario(
        domain="medical",
        name="tingling-fingers-at-night",
        system="You are a careful medical information assistant; you are not a doctor and you say when to seek care.",
        warm=(
            (
                "For about three weeks I've been waking up at night with pins and needles in my right thumb, index "
                "and middle finger, and shaking my hand makes it go away after a minute or two. I'm 41, I do data "
                "entry all day and crochet most evenings. What could this be?",
                "That pattern, thumb to middle finger, worse at night and relieved by shaking, is typical of carpal "
                "tunnel syndrome, where the median nerve is squeezed at the wrist. Repetitive gripping and wrist "
                "bending, like typing and crochet, can aggravate it, so it's worth seeing your GP to confirm.",
            ),
            (
                "My GP agreed it's probably carpal tunnel and suggested a wrist splint at night and less crochet. "
                "She mentioned nerve conduction tests if it doesn't improve within six to eight weeks. How should "
                "the splint be worn, and does the type matter?",
                "Choose a splint that holds the wrist straight, in a neutral position, because many off-the-shelf "
                "ones bend the wrist back and need adjusting. Wear it every night, snug but not tight enough to "
                "cause swelling, and during crochet too if it doesn't get in the way.",
            ),
            (
                "After ten days the night tingling is a bit better, but I've started dropping things, a teaspoon "
                "twice yesterday, and opening jars feels harder. The muscle at the base of my thumb also looks "
                "slightly flatter than on the left hand. Is that part of the same thing?",
                "It may well be, but weakness, dropping objects and wasting of the thumb muscle suggest the nerve "
                "is more affected than tingling alone would. That deserves a prompt review with your GP, since it "
                "can move the plan toward nerve tests or a referral rather than waiting the full eight weeks.",
            ),
            (
                "I have an appointment on $day. Meanwhile my office offered an ergonomic assessment and a vertical "
                "mouse, and my sister swears by $med and vitamin B6 tablets. Is any of that worth trying?",
                "The ergonomic assessment is worth doing: a neutral wrist while typing, a keyboard at elbow height "
                "and short breaks every half hour all reduce pressure on the nerve. $med can ease pain briefly but "
                "doesn't treat the compression, and high-dose B6 can itself damage nerves, so skip it for now.",
            ),
        ),
        followups=(
            ("Is a wrist rest a good idea?", "Only if you rest your palm on it while pausing, not your wrist."),
            ("What about crochet?", "Short sessions with breaks are fine as long as the tingling doesn't flare."),
            ("Will I need surgery?", "Many people improve without it; surgery is considered if weakness persists."),
            ("The left hand tingles now too.", "Mention it on $day; carpal tunnel often affects both hands."),
            (
                "Are steroid injections an option?",
                "Yes, a doctor may offer one, and it often helps for several months.",
            ),
            (
                "How long is recovery after the operation?",
                "Usually a few weeks for light use and longer for heavy gripping.",
            ),
            (
                "Does the vertical mouse really help?",
                "It keeps your forearm less twisted, which many people find more comfortable.",
            ),
        ),
        slots={"day": ("Monday", "Thursday", "the 12th")},
    ),
    Scenario(
        domain="medical",
        name="wasp-sting-swelling",
        system="You are a calm health information assistant who explains symptoms and clear reasons to get help.",
        warm=(
            (
                "A wasp stung me on the left forearm while I was cutting back a hedge yesterday afternoon. Today the "
                "swelling has spread from the wrist almost to the elbow; it's hot, red, itchy and the skin feels "
                "tight. I have no trouble breathing and my face isn't swollen, so should I be worried?",
                "That sounds like a large local reaction, which is common and usually peaks at 24 to 48 hours "
                "before settling over five to ten days. Without breathing trouble, face or throat swelling, "
                "dizziness or hives elsewhere, it isn't anaphylaxis, but keep an eye on it.",
            ),
            (
                "I took an antihistamine last night and put a cold pack on it, which helped the itching. But I wear "
                "a wedding ring and the fingers on that hand are starting to puff up, and there's a small blister "
                "right where the sting was. What should I do about the ring and the blister?",
                "Take the ring off now, with soap or cold water if it's tight, because swelling can spread into the "
                "fingers and make it hard to remove later. Leave the blister intact, keep it clean and covered, and "
                "don't scratch, since broken skin is the main route for infection.",
            ),
            (
                "On day three the swelling is slowly going down, but now there's a red streak about ten "
                "centimetres long running from the sting toward my armpit. It's tender rather than itchy, and "
                "this evening I feel a bit shivery. Is this still the same reaction?",
                "A red streak spreading toward the armpit with shivering could be lymphangitis, an infection "
                "tracking along the lymph vessels, which is different from the allergic reaction. That needs to be "
                "seen today at urgent care or an out-of-hours service, because it's usually treated with antibiotics.",
            ),
            (
                "The out-of-hours doctor said it looks like early cellulitis and gave me $abx for seven days. She "
                "drew a pen line around the redness and told me to come back if it spreads past it. She also asked "
                "whether I'd reacted like this to a sting before; does that matter for the future?",
                "It matters a little: a large local reaction makes a similar one more likely next time, but the "
                "risk of a severe whole-body reaction stays low. Finish the whole course of $abx, check the pen "
                "line morning and evening, and ask your GP whether to keep an antihistamine in the garden shed.",
            ),
        ),
        followups=(
            ("It's still inside the line this morning.", "Good, that suggests the antibiotic is starting to work."),
            ("Can I take $med with the antibiotic?", "Yes, $med is generally fine alongside it, taken with food."),
            ("And gardening gloves?", "Yes, thick gloves and long sleeves help a lot when trimming hedges."),
            ("The blister popped overnight.", "Wash it gently and cover it with a clean non-stick dressing."),
            ("Should I keep the arm raised?", "Yes, resting it on a pillow above heart level helps the swelling."),
            ("When can I wear the ring again?", "Once your fingers look normal, usually within a week or so."),
            (
                "What if I get a fever?",
                "A fever over 38 degrees or redness past the line means going back the same day.",
            ),
        ),
        slots={"abx": ("flucloxacillin", "cefalexin", "co-amoxiclav")},
    ),
    # ------------------------------------------------------------------ math
    Scenario(
        domain="math",
        name="theatre-seat-rows",
        system="You are an encouraging math tutor for a 15-year-old; explain one step at a time.",
        warm=(
            (
                "Our school theatre has 20 rows of seats. The front row has 14 seats and every row behind it has 2 "
                "more seats than the row in front. My homework asks how many seats the last row has, so how do I "
                "set that up?",
                "This is an arithmetic sequence with first term a = 14 and common difference d = 2. The n-th term "
                "is a + (n - 1)d, so the 20th row has 14 + 19 × 2 = 52 seats.",
            ),
            (
                "Okay, the last row has 52 seats. The next part asks for the total number of seats in the theatre, "
                "and I tried adding 14 + 16 + 18 and so on on my calculator but kept losing track. Is there a "
                "shortcut?",
                "Yes: pair the first and last rows, 14 + 52 = 66, then the second and second-to-last, 16 + 50 = 66, "
                "and so on. Twenty rows make 10 pairs of 66, so 660 seats; in general S = n/2 × (first + last).",
            ),
            (
                "That's neat. Part (c) says the school wants at least 900 seats, so they'll add rows at the back "
                "that keep the same pattern. How many extra rows do they need, when I don't know how to go "
                "backwards from a total?",
                "Write the sum for n rows as S = n/2 × (2 × 14 + (n - 1) × 2), which simplifies to n² + 13n. Set "
                "n² + 13n ≥ 900 and try values: 24 rows give 888 and 25 rows give 950, so 25 rows, which is 5 extra.",
            ),
            (
                "My friend Priya got 24 rows, because she solved n² + 13n = 900 with the quadratic formula, got "
                "about 24.2 and rounded down. Who is right, and how do I explain it to her?",
                "You are: n ≈ 24.2 means 24 rows fall just short, since they hold only 888 seats, so you must round "
                "up to 25. When a question says 'at least', round up whenever the exact answer isn't a whole number.",
            ),
        ),
        followups=(
            ("So row 25 has how many seats?", "14 + 24 × 2 = 62 seats."),
            ("What if each row adds 3 instead?", "Then d = 3, and row n has 14 + (n - 1) × 3 seats."),
            ("Is 950 the final total?", "Yes, 25 rows with this pattern hold exactly 950 seats."),
            ("Does the formula work for an odd n?", "Yes, n/2 × (first + last) works for any whole number n."),
            ("Why is it called arithmetic?", "Because each term is the previous one plus a fixed difference."),
            (
                "Part (d) adds a balcony: 8 rows of 30.",
                "Those rows are all equal, so the balcony adds 8 × 30 = 240 seats.",
            ),
            ("I got 1190 overall.", "Right: 950 downstairs plus 240 in the balcony makes 1190."),
        ),
    ),
    Scenario(
        domain="math",
        name="river-pen-fencing",
        system="You are a clear, friendly calculus tutor who checks each step with the student.",
        warm=(
            (
                "I have 120 metres of fencing to build a rectangular sheep pen along a straight river, so the river "
                "side needs no fence. The question asks for the dimensions that give the largest area, and I don't "
                "know which variable to pick.",
                "Let x be each of the two sides perpendicular to the river and y the side parallel to it. The "
                "fencing gives 2x + y = 120, so y = 120 - 2x and the area is A = x(120 - 2x) = 120x - 2x².",
            ),
            (
                "Okay, so A = 120x - 2x². We just started derivatives in class; do I set the derivative to zero, "
                "and what do I get?",
                "Yes: A'(x) = 120 - 4x, and setting it to zero gives x = 30. Then y = 120 - 60 = 60, so the pen is "
                "30 m by 60 m with an area of 1800 square metres.",
            ),
            (
                "How do I prove it's a maximum and not a minimum? Mr $teacher always takes marks off if we don't "
                "justify it.",
                "Use the second derivative: A''(x) = -4 is negative for every x, so the graph is a downward parabola "
                "and x = 30 is a maximum. You can also note that 0 < x < 60 and the area is zero at both ends, so "
                "the critical point in between must be the largest.",
            ),
            (
                "The next part changes it: the farmer wants to split the pen into two equal halves with an extra "
                "fence parallel to the short sides, still using 120 metres in total. Does the answer change, and "
                "how do I set it up now?",
                "Now there are three fences perpendicular to the river, so 3x + y = 120 and A = 120x - 3x². "
                "A'(x) = 120 - 6x = 0 gives x = 20 and y = 60, so the pen is 20 m by 60 m, 1200 square metres in "
                "two halves of 20 by 30.",
            ),
        ),
        followups=(
            ("So each half is 600?", "Yes, each half is 20 by 30, which is 600 square metres."),
            ("And with no river?", "Then all four sides need fencing, and the best shape is a 30 by 30 square."),
            (
                "Why is y 60 both times?",
                "At the optimum, half the fencing always goes on the side parallel to the river.",
            ),
            ("Can I check with a table instead?", "Yes, try x = 15, 20 and 25 and you'll see 20 gives the most."),
            ("What are the units of A'?", "Square metres per metre, which is just metres."),
            ("The answer key says 1200 m².", "Then you've matched it: 20 times 60 is 1200."),
            ("Is 2x² the same as (2x)²?", "No, 2x² is twice x squared, while (2x)² equals 4x²."),
        ),
        slots={"teacher": ("Okafor", "Lindqvist", "Haddad")},
    ),
    # ------------------------------------------------------------------ trip
    Scenario(
        domain="trip",
        name="dalmatian-islands",
        system="You are a knowledgeable travel planner who gives concrete, realistic itineraries.",
        warm=(
            (
                "My partner and I have ten days in Croatia in early June, flying into Split and out of Dubrovnik. "
                "We'd like two or three islands, swimming and good seafood, but we don't want to pack and unpack "
                "every day, and we won't rent a car. How would you split the time?",
                "Spend two nights in Split, take the ferry to Hvar for three nights, then the catamaran to Korčula "
                "for three, and finish with two nights in Dubrovnik. That's three moves instead of daily ones, and "
                "every leg has boats in June.",
            ),
            (
                "Hvar town sounds noisy with all the party boats. Would Stari Grad or Jelsa be a better base on "
                "the island, and how do we get around without a car? We're happy to walk and take buses.",
                "Stari Grad is calmer, has the car ferry from Split and a bus to Hvar town in about 20 minutes, so "
                "it suits you well. Jelsa is even quieter with nice coves but thinner connections; for beaches "
                "further away, rent a scooter for a day or use the water taxis.",
            ),
            (
                "We booked Stari Grad. On Korčula we found two apartments: one in the old town for $price a night "
                "and a cheaper one in Lumbarda, about 6 km away, with a small pebble beach. Which would you pick "
                "for three nights, and is there anything special to do on the island?",
                "The old town is worth the money if you like evenings out, since from Lumbarda you need a bus or "
                "taxi back after dinner; Lumbarda wins if swimming matters most. Either way, taste the local white "
                "wine, Grk, around Lumbarda and take the short boat to the monastery on Badija.",
            ),
            (
                "For the last leg, the catamaran from Korčula to Dubrovnik leaves at 6:10 in the morning or 4:30 in "
                "the afternoon, and our flight home is at noon two days later. We'd also love to walk the city "
                "walls. How should we plan Dubrovnik?",
                "Take the afternoon boat so you keep your last Korčula morning and still get an evening in "
                "Dubrovnik. Walk the walls right at opening on your full day to beat the heat and the cruise "
                "crowds, and book the airport bus ahead, since the ride takes about 30 minutes.",
            ),
        ),
        followups=(
            ("Do we need to book the ferries ahead?", "For catamarans in June, yes, a few days ahead is safer."),
            ("Is the wall walk hard?", "It's about two kilometres with lots of steps, so bring water and a hat."),
            ("And what about Lokrum?", "Lokrum is a short ferry from the old port and lovely for an afternoon swim."),
            ("Cash or card there?", "Cards work almost everywhere, but keep some euros for small cafés and taxis."),
            (
                "Any swimming spot near Stari Grad?",
                "Follow the shore path out of town; there are pebbly coves within twenty minutes.",
            ),
            ("Are water shoes needed?", "They help on pebbles and with sea urchins, so pack a cheap pair."),
            (
                "We land in Split at 3 p.m.",
                "Then drop your bags and walk the Riva and Diocletian's Palace at dusk.",
            ),
        ),
        slots={"price": ("110 euros", "130 euros", "145 euros")},
    ),
    Scenario(
        domain="trip",
        name="sri-lanka-hill-train",
        system="You are an experienced travel planner for families; give concrete, compact suggestions.",
        warm=(
            (
                "We're a family of three with a 12-year-old son, going to Sri Lanka for two weeks in February. We "
                "want to see Sigiriya, ride the famous train through the tea country and end with a few beach days "
                "in the south, with a driver rather than self-driving. What order makes sense?",
                "Start with three nights near Sigiriya in the Cultural Triangle, then drive to Kandy for two nights "
                "and take the train toward Ella. After two or three nights in Ella, go via a safari park to the "
                "south coast and finish with four or five nights around Mirissa or Tangalle.",
            ),
            (
                "The Kandy to Ella train takes about seven hours; my son gets bored easily and my husband worries "
                "about getting seats. Should we book reserved seats or go unreserved, and could we ride only part "
                "of the route?",
                "Book reserved seats as soon as sales open, since they sell out in February. To keep it shorter, "
                "ride only from Nanu Oya to Ella, roughly three hours of the most scenic stretch, and have the "
                "driver meet you in Ella with the luggage.",
            ),
            (
                "Good idea, we'll do Nanu Oya to Ella. In Ella we're choosing between Little Adam's Peak and Ella "
                "Rock, and we wonder whether the Nine Arches Bridge is worth it with a kid. How early should we go "
                "to avoid crowds?",
                "Little Adam's Peak is the better pick with a 12-year-old: a clear path, about an hour up, with "
                "great views, while Ella Rock is longer and easy to get lost on. The bridge is worth it; go before "
                "eight and check the timetable so you see a train cross.",
            ),
            (
                "For the safari, our driver $driver suggests Udawalawe instead of Yala because it's less crowded "
                "and elephants are almost guaranteed. Yala has leopards though, and our son really wants to see "
                "one. Which would you choose, and morning or afternoon?",
                "If a leopard is the dream, Yala gives better odds, but expect many more jeeps; Udawalawe is calmer "
                "and excellent for elephants. Either way, book an early morning drive starting around sunrise, "
                "when animals are most active and the heat is lower.",
            ),
        ),
        followups=(
            (
                "What about the Elephant Transit Home?",
                "It's next to Udawalawe, and the feeding time is great fun for kids.",
            ),
            (
                "Is Mirissa okay for swimming?",
                "In February the south coast is usually calm, but always follow the beach flags.",
            ),
            ("Whale watching too?", "February is in season from Mirissa; choose an operator that keeps its distance."),
            (
                "How much should we tip $driver?",
                "A modest daily tip given at the end is customary; ask your agency for the usual range.",
            ),
            ("Do we need visas?", "Most nationalities apply online for an electronic travel authorisation first."),
            (
                "Is the Sigiriya climb hard?",
                "It's about 1,200 steps with some exposed stairs, fine for a fit 12-year-old.",
            ),
            (
                "My son is scared of heights.",
                "Then climb only as far as the Lion's Paw terrace, or try nearby Pidurangala instead.",
            ),
        ),
        slots={"driver": ("Nuwan", "Chaminda", "Ruwan")},
    ),
    # ------------------------------------------------------------------ code
    Scenario(
        domain="code",
        name="bash-backup-filenames",
        system="You are a senior engineer who reviews shell scripts carefully and explains fixes briefly.",
        warm=(
            (
                "I wrote a small backup script that copies every photo from my camera folder into a dated "
                "directory, but it fails on some files:\n\n"
                "for f in $$(ls ~/Camera/*.jpg); do\n"
                "  cp $$f /mnt/backup/$$(date +%F)/\n"
                "done\n\n"
                "Files like 'beach day 01.jpg' give 'cp: cannot stat beach'. What's wrong?",
                "The ls output is split on whitespace, so 'beach day 01.jpg' becomes three separate words. Loop "
                'over the glob directly and quote the variable: for f in ~/Camera/*.jpg; do cp -- "$$f" "$$dest/"; '
                "done, with dest set once before the loop.",
            ),
            (
                "I switched to the glob and quotes and spaces work now. But when the folder is empty I get "
                "\"cp: cannot stat '/home/ana/Camera/*.jpg'\", and I'd also like to include .JPG and .jpeg files. "
                "How do I handle both?",
                "Enable nullglob so an unmatched pattern expands to nothing, and nocaseglob to ignore case, then "
                "list both extensions: shopt -s nullglob nocaseglob; for f in ~/Camera/*.jpg ~/Camera/*.jpeg. Put "
                "the shopt line near the top so it applies to every loop in the script.",
            ),
            (
                "Now I want to skip files that already exist in the backup and log what was copied:\n\n"
                "if [ -e $$dest/$$(basename $$f) ]; then\n"
                "  continue\n"
                "fi\n"
                'cp "$$f" "$$dest" && echo copied $$f >> backup.log\n\n'
                "It never seems to skip anything. Why?",
                "The test is unquoted, so a name with spaces becomes several arguments and [ fails with 'too many "
                'arguments\', which counts as false. Quote it, [ -e "$$dest/$$(basename -- "$$f")" ], or simply use '
                "cp -n, which never overwrites an existing file.",
            ),
            (
                "Last thing: the script runs from cron at 2 a.m. and the log stays empty, though it works when I "
                "run it by hand with 'bash backup.sh'. The crontab line is '0 2 * * * backup.sh' and the script "
                "starts with #!/bin/sh. What's different under cron?",
                "Cron runs with a minimal PATH and a different working directory, so backup.sh isn't found and a "
                "relative backup.log would land elsewhere; use absolute paths for both. Also, shopt is a bash "
                "builtin, so with #!/bin/sh it fails under dash; change the shebang to #!/bin/bash.",
            ),
        ),
        followups=(
            ("Where does cron's output go?", "Usually to local mail; append >> /home/ana/cron.log 2>&1 instead."),
            ("Should I use set -e?", "It helps, but add set -u and -o pipefail too, and test carefully."),
            ("And rsync instead?", "rsync -a --ignore-existing would replace most of this loop."),
            ("What does the -- after cp do?", "It ends the options, so a file named '-r.jpg' isn't read as a flag."),
            ("shellcheck flags SC2086 now.", "That's an unquoted variable; quote it the way the warning suggests."),
            ("Is $$HOME safe in cron?", "Yes, cron sets HOME, but absolute paths are still clearer."),
            ("Can I rotate backup.log?", "Yes, with a weekly logrotate rule, or put the date in the log file name."),
        ),
    ),
    Scenario(
        domain="code",
        name="c-device-name-copy",
        system="You are a senior embedded C engineer doing a friendly, precise code review.",
        warm=(
            (
                "Our firmware stores a device name in a struct, and sometimes the name printed over the serial "
                "port has garbage at the end:\n\n"
                "struct config { char name[16]; int baud; };\n\n"
                "void set_name(struct config *c, const char *src) {\n"
                "    strncpy(c->name, src, sizeof(c->name));\n"
                "}\n\n"
                "It seems to happen only with names of 16 characters or more. Why?",
                "strncpy adds no terminating '\\0' when the source is at least as long as the buffer, so a "
                "16-character name fills all 16 bytes and printf keeps reading past the end. Copy at most "
                "sizeof - 1 bytes and set c->name[sizeof(c->name) - 1] = '\\0' explicitly.",
            ),
            (
                'I switched to snprintf(c->name, sizeof(c->name), "%s", src), which always terminates. But '
                "$reviewer says snprintf is too heavy for our Cortex-M0 with 32 KB of flash and suggests strlcpy "
                "instead. We use newlib; which should we pick?",
                "snprintf pulls in the formatted-output code, which can cost several kilobytes unless your logging "
                "already links it. strlcpy is small and always terminates, but check that your newlib version has "
                "it; otherwise a ten-line helper with memcpy and an explicit terminator is perfectly fine.",
            ),
            (
                "We wrote our own helper:\n\n"
                "size_t copy_name(char *dst, size_t n, const char *src) {\n"
                "    size_t len = strlen(src);\n"
                "    if (len >= n) len = n - 1;\n"
                "    memcpy(dst, src, len);\n"
                "    dst[len] = 0;\n"
                "    return len;\n"
                "}\n\n"
                "Is there any edge case we missed?",
                "If n is 0, n - 1 wraps around to SIZE_MAX and memcpy overflows, so return early when n == 0. Also "
                "strlen reads the whole source even when it's huge or unterminated; if src can come from outside, "
                "use strnlen(src, n) instead.",
            ),
            (
                "The name actually arrives over BLE in a 20-byte packet that isn't null-terminated, with the length "
                "in the first byte. Right now we call copy_name(cfg.name, sizeof cfg.name, (char *)&pkt[1]). What "
                "should change?",
                "Don't treat the payload as a C string: read the length byte, check it against both the packet size "
                "minus one and the destination size, then memcpy exactly that many bytes and terminate. Otherwise "
                "strlen runs past the packet into whatever follows it in memory.",
            ),
        ),
        followups=(
            (
                "Should the length check reject or truncate?",
                "Reject oversize lengths; silently truncating a bad packet hides bugs.",
            ),
            (
                "What about UTF-8 names?",
                "Truncating can split a multibyte character, so cut at a character boundary.",
            ),
            ("Is memcpy fine with len 0?", "Yes, copying zero bytes is fine as long as both pointers are valid."),
            ("Can the compiler warn us?", "GCC's -Wstringop-truncation flags many risky strncpy calls."),
            (
                "Where should the unit test go, test_config.c?",
                "Yes, test lengths 0, 15, 16 and 19 in test_config.c.",
            ),
            (
                "The baud field got corrupted once too.",
                "That points to an out-of-bounds write, so check every copy into name.",
            ),
            ("Run it under ASan?", "Yes, build the helper on a PC with -fsanitize=address and fuzz it."),
        ),
        slots={"reviewer": ("Jonas", "Mei", "Rafael")},
    ),
    # ------------------------------------------------------------------ roleplay
    Scenario(
        domain="roleplay",
        name="ember-bee-orchard",
        system="You are the narrator of an interactive fantasy story; describe scenes vividly and let the player act.",
        warm=(
            (
                "*I push open the gate of the old orchard at dusk, my apprentice satchel heavy with smoke-herbs.* "
                "Mistress $keeper sent me to find out why the ember-bees stopped singing three nights ago. *I look "
                "around for the hives.*",
                "*Rows of crooked pear trees climb toward a hill, and among them stand twelve clay hives, each "
                "glowing faintly like a banked coal, except the largest, which is dark and cold.* A low, off-key "
                "hum drifts from the others. *Beside the dark hive, the grass is scorched in a perfect circle.*",
            ),
            (
                "*I kneel by the scorched circle, touch the ash and sniff my fingers.* Does it smell like ordinary "
                "fire, or something else? *I keep one hand on my herb pouch in case the bees grow angry.*",
                "*The ash is cold and smells of iron and crushed mint, not woodsmoke: whatever burned here burned "
                "without a flame.* *Behind you the hives hum louder, and a single ember-bee lands on your sleeve, "
                "trembling, its light flickering like a candle in a draught.*",
            ),
            (
                "*I hold very still and whisper to the bee, the way Mistress $keeper taught me.* Little one, what "
                "happened to your queen? *I offer it a drop of honey-water from my flask.*",
                "*The bee drinks, its glow steadying, then circles your head three times and darts toward the dark "
                "hive.* It hovers at the entrance, buzzing in short, sharp bursts, a warning pattern you know from "
                "your lessons. *Inside, something scrapes against the clay, slow and heavy.*",
            ),
            (
                "*I light a bundle of smoke-herbs, let it smoulder, and lift the lid of the dark hive just a crack.* "
                "If there's a thief in there, I'd rather see it before it sees me. *I'm ready to slam the lid shut.*",
                "*Pale smoke curls in, and two copper-green eyes blink back from the comb: a salamander as long as "
                "your forearm, coiled around the queen's cell, its skin glowing as it drinks her warmth.* It hisses "
                "but doesn't flee; the smoke makes it sluggish. *Across the orchard, every hive falls silent.*",
            ),
        ),
        followups=(
            (
                "*I reach for my iron tongs.*",
                "*The salamander's glow flares and it flattens against the comb, wary of the iron.*",
            ),
            ("Can I talk to it?", "*It tilts its head at your voice, as if it has met apprentices before.*"),
            ("*I back away slowly.*", "*The lid settles, and the scraping inside resumes, softer now.*"),
            ("Is the queen still alive?", "*Through the crack you see a gold pulse in her cell, weak but steady.*"),
            (
                "*I pour honey-water near the entrance.*",
                "*The salamander's tongue flicks out and it inches toward the sweetness and the open air.*",
            ),
            (
                "What would Mistress $keeper do?",
                "*You remember her saying that every thief is hungry first and wicked second.*",
            ),
            (
                "*I check the other hives for tracks.*",
                "*Under the third hive, tiny clawed prints lead away toward the stream.*",
            ),
        ),
        slots={"keeper": ("Halvard", "Brisa", "Oona")},
    ),
    Scenario(
        domain="roleplay",
        name="conservatory-poisoning",
        system="You are the narrator of an interactive Victorian mystery; stay in character and reveal clues slowly.",
        warm=(
            (
                "*I step into the glass conservatory of Ashcombe Hall, shaking rain from my coat.* I'm Inspector "
                "$inspector of Scotland Yard, and I'm told Sir Edmund collapsed here during last night's orchid "
                "viewing. *I look at the spot where he was found.*",
                "*Steam beads the glass, and the air is thick with wet soil and something sweeter beneath it.* The "
                "butler, Mr Pell, points to an overturned wicker chair beside a bench of rare orchids, a teacup "
                "shattered on the tiles. *One orchid pot has been knocked over, its soil strangely dry.*",
            ),
            (
                "*I crouch and study the broken teacup without touching it, then glance at the dry pot.* Who poured "
                "Sir Edmund's tea last night, Mr Pell, and who tends these orchids? *I note down everyone present.*",
                "*Pell straightens his cuffs.* Lady Margaret poured, sir, from one pot for all five guests, yet only "
                "Sir Edmund fell ill; the orchids are young Mr Thorne's charge, though Dr Vale has lately taken "
                "a great interest in them. *His eyes flick, just once, toward a locked cabinet by the door.*",
            ),
            (
                "*I walk to the locked cabinet and hold out my hand for the key.* Who keeps this, and what's "
                "inside? *While I wait, I probe the dry pot's soil with my pencil.*",
                "*Pell hands over the key reluctantly: inside are fertiliser, sulphur powder and a small blue vial "
                "labelled 'Foxglove tincture, Dr V.', nearly empty.* *Your pencil strikes something hard in the "
                "pot: silver sugar tongs wrapped in a handkerchief embroidered with a T.*",
            ),
            (
                "*I hold up the handkerchief so everyone can see the T.* Mr Thorne, why is your handkerchief hiding "
                "sugar tongs in a flowerpot, and Dr Vale, why is your foxglove nearly gone? *I watch both faces "
                "closely.*",
                "*Thorne goes white and stammers that he lent the handkerchief to Lady Margaret when she cut her "
                "hand on the glass two days ago.* *Dr Vale calmly says the tincture was prescribed to Sir Edmund "
                "himself, for his heart, and someone has been helping themselves.* *Lady Margaret's gloved hand "
                "tightens on a chair.*",
            ),
        ),
        followups=(
            (
                "*I ask Lady Margaret to remove her glove.*",
                "*She hesitates, then bares a neatly bandaged palm, the cut real and recent.*",
            ),
            ("Who took sugar last night?", "*Pell recalls that only Sir Edmund did, three lumps, as always.*"),
            ("*I sniff the teacup fragments.*", "*Beneath the tea there is a faint, bitter, grassy note.*"),
            ("Did Dr Vale examine him?", "*Pell says the doctor reached him first and sent everyone out.*"),
            (
                "*I look for the sugar bowl on the tray.*",
                "*The bowl is gone; only a damp ring on the silver tray shows where it stood.*",
            ),
            ("Where was Thorne at nine?", "*Thorne says he was alone in the boiler house, stoking the heating.*"),
            (
                "I'd like to see Sir Edmund's prescription.",
                "*Dr Vale hands over a folded paper dated March: ten drops daily.*",
            ),
        ),
        slots={"inspector": ("Graves", "Whitlock", "Amberley")},
    ),
)

HOLDOUT5_FOLLOWUPS: dict[str, tuple[Turn, ...]] = {
    "negotiation": (
        ("Should I mention a deadline?", "Only if it's real; a bluffed deadline backfires if they call it."),
        ("What if they go quiet?", "Wait two or three days, then send one short, friendly nudge."),
        ("Do we just split the difference?", "Only as a last step; meeting halfway too early leaves value behind."),
        ("Can I ask for extras instead?", "Yes, extras often cost them less than a lower price would."),
        ("How do I say no politely?", "Thank them, say it doesn't work for you, and leave the door open."),
        ("Should I get it in writing?", "Yes, confirm the agreed terms in a short message or email."),
    ),
    "medical": (
        ("Can I exercise meanwhile?", "Gentle activity is usually fine as long as it doesn't make things worse."),
        ("Could a pharmacist help?", "Yes, a pharmacist can advise on over-the-counter options and when to see a GP."),
        ("What should I tell the doctor?", "When it started, how it has changed, and what you have tried so far."),
        ("Could it come back?", "It can, so keep up whatever helped once it settles."),
        ("When is it an emergency?", "Trouble breathing, severe pain or feeling faint means going straight to A&E."),
        ("Does diet matter here?", "Not much directly, but staying hydrated and rested helps recovery."),
    ),
    "math": (
        ("Can you check my answer?", "Sure, show me your working and we'll go through each step."),
        ("Why is that allowed?", "Because it changes only the form of the expression, not its value."),
        ("Is there a faster way?", "Sometimes, but learn the full method first so you can check shortcuts."),
        ("Do I need to write units?", "Yes, put units on the final answer; teachers often mark them."),
        ("I'm lost again.", "That's okay; let's go back to the last step that made sense."),
        ("Would this come up on the exam?", "Probably, as a multi-part question where each part builds on the last."),
    ),
    "trip": (
        ("Is that too rushed?", "It's busy but doable; drop one stop if you prefer slower days."),
        ("What should we pack?", "Light layers, comfortable walking shoes and a rain jacket just in case."),
        ("Do we need travel insurance?", "Yes, cover for medical costs and cancellations is worth having."),
        ("How far ahead should we book?", "Book flights and popular stays a few months ahead for the best choice."),
        ("Any food we must try?", "Ask locals for the regional speciality; the markets are a good start."),
        ("Can we do it cheaper?", "Travel slightly off-peak and choose guesthouses over hotels to save a lot."),
    ),
    "code": (
        ("Can you show the fixed version?", "Sure, here it is with the changes applied and a comment on each."),
        ("Would a test have caught this?", "Yes, a test with that edge-case input would have failed before the fix."),
        ("Is this a common mistake?", "Very common; most experienced developers have made it at least once."),
        ("Does the fix cost performance?", "Not noticeably; it adds almost no overhead."),
        ("Should I add a comment?", "A short comment explaining why, not what, helps the next reader."),
        ("Would a linter flag it?", "Most static analysers for the language have a rule for exactly this."),
    ),
    "roleplay": (
        ("*I look around.*", "*Shadows shift at the edge of your vision, and something small scurries away.*"),
        ("What do I hear?", "*A faint, rhythmic sound in the distance, like footsteps trying not to be heard.*"),
        ("*I wait quietly.*", "*Seconds stretch, and the silence itself begins to feel like an answer.*"),
        ("Who else is here?", "*No one steps forward, but a door that was closed now stands slightly ajar.*"),
        ("*I check my belongings.*", "*Everything is where you left it, though your pocket feels a touch lighter.*"),
        ("Can I leave?", "*You could, but the way back looks darker than the way ahead.*"),
    ),
}

HOLDOUT5_OFFTOPIC: tuple[tuple[Turn, Turn, Turn], ...] = (
    (
        (
            "Unrelated, but how do I get rust off my cast iron pan?",
            "Scrub the rust off with steel wool and a little water, dry the pan on the hob, then rub in a thin "
            "layer of oil and heat it until it just starts to smoke.",
        ),
        ("Can I use dish soap on it?", "A little mild soap is fine; just dry and oil it afterwards."),
        ("What oil is best?", "Any neutral oil with a high smoke point, like sunflower or rapeseed."),
    ),
    (
        (
            "Why do dogs tilt their heads when you talk to them?",
            "Probably to hear better and to see your face around their muzzle, and because people reward it.",
        ),
        ("Do all breeds do it?", "Many do, though long-snouted dogs seem to do it more often."),
        (
            "Does it mean they understand?",
            "Some studies link it to recognising familiar words, but it isn't proof of understanding.",
        ),
    ),
    (
        (
            "I'm going to my first ice hockey game tonight with people from work and I don't want to look "
            "clueless. What is icing, and why does the referee keep stopping play for it?",
            "Icing is when a team shoots the puck from its own half across the opponent's goal line and nobody "
            "touches it; play stops and the faceoff goes back to the offending team's end.",
        ),
        ("And offside?", "A player is offside if they enter the attacking zone before the puck crosses the blue line."),
        ("How long is a period?", "Twenty minutes of playing time, and the clock stops at every whistle."),
    ),
    (
        (
            "Totally off topic: who reached the South Pole first?",
            "Roald Amundsen's Norwegian team got there on 14 December 1911, about five weeks before Robert Falcon "
            "Scott's party.",
        ),
        ("What happened to Scott?", "He and his four companions died on the return journey in early 1912."),
        ("Why was Amundsen faster?", "He relied on sled dogs and skis, and planned his supply depots very carefully."),
    ),
    (
        (
            "How does a microwave oven actually heat food?",
            "It fills the oven with microwaves that make water molecules in the food flip back and forth very "
            "quickly, and that motion turns into heat.",
        ),
        ("Then why does the plate get hot?", "Mostly from the hot food touching it, though some dishes absorb a bit."),
        ("Is metal really dangerous in there?", "Thin or pointed metal like foil edges can spark, so keep it out."),
    ),
    (
        (
            "My son put a doorknob through the hallway wall and there's a fist-sized hole in the plasterboard. Can "
            "I fix that myself, or do I need to call someone?",
            "You can do it: cut the hole into a neat square, screw a wooden batten behind it, fit a plasterboard "
            "patch, then tape, fill and sand.",
        ),
        ("What filler should I buy?", "A ready-mixed joint compound or a lightweight filler works well for that."),
        ("How many coats?", "Usually two or three thin coats, sanding lightly once each one is dry."),
    ),
    (
        (
            "Random question, what's the difference between a viola and a violin?",
            "A viola is slightly bigger, tuned a fifth lower, and its music is usually written in the alto clef.",
        ),
        ("Which is harder to learn?", "About the same; many violists start on the violin and switch later."),
        ("Does it use the same strings?", "It shares three, but has a low C string instead of the violin's high E."),
    ),
    (
        (
            "When is the right time to prune hydrangeas?",
            "It depends on the type: mopheads flower on old wood, so only remove dead heads in spring, while "
            "panicle hydrangeas can be cut back hard in late winter.",
        ),
        ("Mine has blue flowers.", "Then it's probably a mophead or lacecap in acidic soil, so prune it lightly."),
        ("Can I turn them pink?", "Yes, raising the soil pH with garden lime over a season or two shifts them pink."),
    ),
)
