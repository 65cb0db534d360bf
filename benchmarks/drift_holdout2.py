"""Second held-out split for the topic-shift stress test (``benchmarks/drift.py``).

Written blind (without seeing the detector or any result) on 2026-11-29 as a second held-out
split. Same format as ``HOLDOUT`` in ``drift_sessions.py``: two new scenarios per domain (four
long warm turns, then short scenario-specific follow-ups), six new generic follow-ups per
domain, and eight new casual off-topic threads of three turns each. Text uses
``string.Template`` slots filled by ``drift_sessions._slot_values``.
"""

from __future__ import annotations

from drift_sessions import Scenario, Turn

HOLDOUT2: tuple[Scenario, ...] = (
    # ----------------------------------------------------------------------------------------
    # Negotiation
    # ----------------------------------------------------------------------------------------
    Scenario(
        "negotiation",
        "used-piano",
        "You are a level-headed negotiation coach who helps people buy things second-hand. Answer briefly.",
        (
            (
                "I'm looking at a used Yamaha U1 upright piano from about 1985, listed on a classifieds site for "
                "$ask. The seller says it was tuned last spring and has always stood in a heated living room. Similar "
                "uprights in my area go for $low to $high depending on condition. What should I check before I even "
                "talk about price?",
                "Book a piano technician for an hour before you negotiate; a cracked soundboard, loose tuning pins or "
                "sticky keys can cost more than the piano itself. Ask the seller for the serial number to confirm the "
                "year, and find out who pays the movers. Anything the technician finds becomes your strongest "
                "argument on price.",
            ),
            (
                "The technician came with me on Saturday. She found two sluggish keys in the bass, worn hammer felts, "
                "and said it needs a pitch raise because it sits almost a semitone flat. She estimated about 350 for "
                "the work. How do I bring this up with the seller?",
                "Share the findings plainly and show him the technician's written estimate, so it reads as fact "
                "rather than haggling. Then name a number: the asking price minus the repairs and a little for the "
                "risk, which puts you near $offer. Keep the tone warm, because people are often attached to their "
                "pianos.",
            ),
            (
                "I offered $offer and explained the repairs. The seller, an older man called Mr. Hendry, said the "
                "piano belonged to his late wife and he won't go below $counter. He also mentioned that two other "
                "people are coming to look at it this weekend. Is he bluffing?",
                "He may be, but the attachment is probably real, so don't push hard against it. Acknowledge the "
                "piano's history, then meet him partway at $mid and offer to collect it on a day that suits him. For "
                "a seller like this, a respectful and certain buyer often matters more than the last hundred.",
            ),
            (
                "He said $mid is close, and asked if I'd also take the matching bench and the old metronome for $mid "
                "plus 50. Moving will cost me around 280 with a specialist company, and the stairs up to my flat are "
                "narrow. Should I accept, and what should go in writing?",
                "That's a fair package, so accept, but list the bench and metronome on a short written receipt along "
                "with the price, date and serial number. Agree beforehand who is responsible if the movers scuff his "
                "floor or door frames. Pay by bank transfer or against a signed receipt, never loose cash with no "
                "record.",
            ),
        ),
        (
            (
                "He wants cash on pickup.",
                "Cash is fine as long as he signs a dated receipt naming the piano and the amount.",
            ),
            (
                "What if the movers can't get it up my stairwell?",
                "Agree now that the sale stands and he holds it a few extra days while you arrange a hoist.",
            ),
            (
                "Should I ask him to knock off the tuning cost too?",
                "No, you already priced the repairs in, and reopening that now could sour the deal.",
            ),
            (
                "Is $final too low to try again?",
                "At this point yes; going back down to $final after he moved would look like bad faith.",
            ),
            (
                "The castors are rusted as well.",
                "That's cosmetic, so only mention it if he tries to raise the price again.",
            ),
            (
                "Can I ask for a week to arrange transport?",
                "Yes, offer a small deposit to hold it and he will very likely agree.",
            ),
            (
                "He agreed to everything, finally.",
                "Great; send a short message today confirming the price, the items and the pickup date.",
            ),
        ),
        slots={"ask": ("1800", "2200", "2600")},
    ),
    Scenario(
        "negotiation",
        "bathroom-quote",
        "You are a practical advisor who helps homeowners negotiate with builders and tradespeople. Keep answers "
        "short.",
        (
            (
                "We're redoing our small upstairs bathroom: new shower tray, tiling up to the ceiling, a vanity unit, "
                "and moving the toilet about 40 centimetres. The first contractor quoted $ask including materials. "
                "Two other quotes came in at $low and $high, but the cheaper one can't start until March. How do I "
                "compare them fairly?",
                "Put the three quotes side by side line by line: labour, materials, waste removal, plumbing changes "
                "and who buys the tiles. A quote that looks cheap often leaves out the toilet move or the skip. Ask "
                "each contractor to confirm in writing what is excluded.",
            ),
            (
                "The first contractor, Dariusz, turned out to be the most thorough: he included the skip, a new "
                "extractor fan and a waterproof membrane that the others didn't mention. We'd like to go with him, "
                "but our budget is closer to $offer. Is it reasonable to ask him to come down that much?",
                "You can ask, but a drop that size usually means cutting scope rather than his margin. Tell him he's "
                "your preferred choice and ask which items could change to bring it nearer $offer, for example "
                "supplying the vanity yourselves. Treating it as a shared problem keeps the relationship good before "
                "work even starts.",
            ),
            (
                "He came back with $counter if we buy the tiles and vanity ourselves and drop the heated floor mat we "
                "had asked for. He also wants 30 percent upfront before he orders anything. Does that sound normal, "
                "and is there room to push further?",
                "A deposit of 25 to 30 percent for materials is common, but tie the remaining payments to stages such "
                "as first fix, tiling and completion. There is still room: propose $mid with the same scope changes "
                "and offer flexible start dates, which contractors value. Keep at least 10 percent back until the "
                "snag list is done.",
            ),
            (
                "He accepted $mid if we can start on the 14th and pay in three stages. My partner is worried about "
                "overruns, because the house is from the 1930s and there might be rotten joists under the floor. What "
                "should the contract say about surprises like that?",
                "Add a clause that any unforeseen work needs a written change order with a price before it starts, so "
                "nothing gets added silently. Ask for his day rate and material markup up front so you can check "
                "those extras. Also agree a target completion date and what happens if it slips.",
            ),
        ),
        (
            (
                "He found a soft joist on day two.",
                "Ask to see it, then get the repair priced on a change order before he carries on.",
            ),
            (
                "Is a 15 percent markup on materials normal?",
                "Yes, 10 to 20 percent is typical, so 15 is well within range.",
            ),
            (
                "Should we pay the second stage before the grouting?",
                "Pay it once the tiling is finished and you've checked it, as your stages say.",
            ),
            (
                "What if the joist repair adds another 900?",
                "Compare it with his day rate and the timber cost, and if it adds up, approve it in writing.",
            ),
            (
                "The plumber he uses isn't registered.",
                "Insist on a registered plumber or a sign-off certificate, since moving the toilet touches the soil "
                "stack.",
            ),
            (
                "Can we hold back the last payment?",
                "Yes, keep the final stage until the snag list is cleared and you've tested the shower.",
            ),
            (
                "He's asking us for an online review.",
                "Write it after the final payment, when you can judge the whole job.",
            ),
        ),
        slots={"ask": ("8400", "9600", "11200")},
    ),
    # ----------------------------------------------------------------------------------------
    # Medical
    # ----------------------------------------------------------------------------------------
    Scenario(
        "medical",
        "acid-reflux",
        "You are a cautious nurse doing a chat intake; answer plainly and say clearly when a doctor is needed.",
        (
            (
                "I'm $age and for about $weeks weeks I've had a burning feeling behind my breastbone, mostly after "
                "dinner and when I lie down. Some mornings there's a sour taste at the back of my throat. I've been "
                "drinking a lot more coffee since I started a new job. Is this heartburn?",
                "It sounds like acid reflux, which is common and often linked to late meals, coffee, alcohol and "
                "stress. Chest pain should never be assumed to be heartburn if it comes with breathlessness, "
                "sweating, or pain spreading to the arm or jaw; that needs emergency care. Does it ever come on when "
                "you exert yourself, like climbing stairs?",
            ),
            (
                "No, never during exercise, I cycle to work every day and feel fine. It's worst after big meals, "
                "especially pizza or anything with tomato sauce, and after a glass of wine. I usually eat at nine "
                "because I get home late, and I'm in bed by eleven. What can I change?",
                "Try to finish eating three hours before you lie down, keep dinners smaller, and notice which foods "
                "set it off; tomato, fat, alcohol and coffee are frequent triggers. Raising the head of the bed by 10 "
                "to 15 centimetres with blocks helps more than extra pillows. Loose waistbands also take pressure off "
                "the stomach.",
            ),
            (
                "A friend told me to just buy $med from the pharmacy. I already take a low-dose blood pressure "
                "tablet, amlodipine, every morning. Is it safe to combine them, and how long can I take it without "
                "seeing a doctor?",
                "$med is generally fine alongside amlodipine, but ask the pharmacist to check your full list of "
                "medicines. Over-the-counter use is usually limited to about two weeks, and if you still need it "
                "after that, see your GP. Go sooner if the symptoms change.",
            ),
            (
                "If it doesn't get better, what would the doctor actually do? I'm a bit anxious about having a camera "
                "test. Also, my father had a stomach ulcer in his fifties, does that matter?",
                "Usually the GP reviews your symptoms and may test for H. pylori, a bacterium linked to ulcers, with "
                "a breath or stool test. A camera test is only needed for warning signs like trouble swallowing, "
                "weight loss, vomiting or black stools, or if treatment fails. Your father's ulcer is worth "
                "mentioning, since H. pylori can run in families.",
            ),
        ),
        (
            (
                "I had it again after a curry last night.",
                "Spicy food is a common trigger, so note it in a simple food diary.",
            ),
            (
                "Does chewing gum help?",
                "It can, because chewing makes more saliva, which neutralises acid in the gullet.",
            ),
            ("Is drinking milk okay for it?", "It soothes briefly, but full-fat milk can trigger more acid later on."),
            (
                "Now my voice is hoarse in the mornings.",
                "Reflux can irritate the voice box, so mention the hoarseness when you see your GP.",
            ),
            (
                "Should I stop coffee completely?",
                "Try cutting down to one cup in the morning first and see if that's enough.",
            ),
            ("What does a black stool mean?", "It can signal bleeding in the stomach, so see a doctor the same day."),
            (
                "Will losing a few kilos help?",
                "Yes, even modest weight loss reduces pressure on the stomach and often eases reflux.",
            ),
        ),
        slots={
            "age": ("31", "44", "53", "58"),
            "weeks": ("two", "three", "five"),
            "med": ("omeprazole", "famotidine"),
        },
    ),
    Scenario(
        "medical",
        "toddler-ear",
        "You are a calm paediatric nurse answering parents by chat; be practical and flag anything urgent.",
        (
            (
                "My $age-year-old daughter woke up crying at 3 a.m. and keeps pulling at her right ear. She had a "
                "runny nose all last week from nursery, and tonight her temperature was 38.4 under the arm. She's "
                "still drinking but refused her breakfast. What could this be?",
                "Ear pulling after a cold, together with a fever, is the typical picture of a middle ear infection, "
                "which is very common at her age. Many clear up on their own within two or three days. Keep her "
                "drinking and let her rest; skipping food for a day is not unusual.",
            ),
            (
                "Can I give her something for the pain? We have children's paracetamol and children's ibuprofen at "
                "home, and she weighs about 14 kilos. Is it okay to alternate them?",
                "Yes, either one helps with pain and fever; dose by her weight or age as printed on the packet, using "
                "the syringe provided. Start with one, and only add the other if she is still distressed before the "
                "next dose is due. Write down the times so nobody doubles a dose by mistake.",
            ),
            (
                "She's had paracetamol for a day and slept better, but this morning there was yellowish crusty stuff "
                "on her pillow and around the ear opening. The pulling has actually stopped. Has the eardrum burst, "
                "and is that dangerous?",
                "It sounds like the eardrum has perforated and let the pus out, which often relieves the pain, so the "
                "calm is expected. Small perforations usually heal by themselves within a few weeks. She should still "
                "see a GP in the next day or two, because discharge is often treated with antibiotics.",
            ),
            (
                "The GP appointment is tomorrow at 10. Meanwhile, should I clean the ear, and can she have a bath "
                "tonight? Her swimming lessons are on Saturdays, and my partner is asking whether she should skip "
                "nursery.",
                "Gently wipe the outer ear with clean cotton wool, but never push anything into the canal. A bath is "
                "fine if you keep that ear out of the water, and skip swimming until the doctor says the eardrum has "
                "healed. She can go back to nursery once she's been fever-free and comfortable for 24 hours.",
            ),
        ),
        (
            (
                "Her fever's back up to 39.1.",
                "Give a dose of fever medicine and tell the GP; call sooner if she turns drowsy or floppy.",
            ),
            (
                "There's some swelling behind the ear now, is that normal?",
                "No, swelling or redness behind the ear needs urgent assessment today.",
            ),
            (
                "The GP prescribed amoxicillin for seven days.",
                "Give the whole course, even if she seems better after two days.",
            ),
            ("She hates the taste.", "Mix each dose with a little juice or yoghurt right before giving it."),
            (
                "Can she fly to her grandma's in two weeks?",
                "Usually yes once it's healed, but ask the GP to check the eardrum before you fly.",
            ),
            (
                "Will this affect her hearing?",
                "Hearing can be muffled for a few weeks, but it normally recovers fully.",
            ),
            ("What about her left ear?", "It's fine unless she starts pulling at it or it begins to discharge too."),
            (
                "Does she need a follow-up check?",
                "Yes, a review in about six weeks is sensible to confirm the eardrum has closed.",
            ),
        ),
        slots={"age": ("two", "three", "four")},
    ),
    # ----------------------------------------------------------------------------------------
    # Math
    # ----------------------------------------------------------------------------------------
    Scenario(
        "math",
        "simultaneous-equations",
        "You are an encouraging maths tutor for a teenager; explain one step at a time.",
        (
            (
                "Our homework says: a school sold 240 tickets for its play, adult tickets cost 6 pounds and student "
                "tickets 4 pounds, and they took 1180 pounds in total. I have to find how many of each were sold "
                "using simultaneous equations. I don't even know how to start writing the equations.",
                "Let a be the number of adult tickets and s the number of student tickets. Counting tickets gives a + "
                "s = 240, and counting money gives 6a + 4s = 1180. Now you have two equations in two unknowns, which "
                "is exactly what you need.",
            ),
            (
                "Okay, I have both equations. My teacher showed us substitution and elimination, but I always mix "
                "them up. Which one is easier here, and what's the first step?",
                "Elimination is quick here: multiply the first equation by 4 to get 4a + 4s = 960. Subtract that from "
                "6a + 4s = 1180, the s terms cancel, and you're left with 2a = 220. So a = 110.",
            ),
            (
                "So 110 adult tickets, and the students are 240 minus 110, which is 130. I checked: 6 times 110 is "
                "660 and 4 times 130 is 520, which adds up to 1180. Is that how you verify it, or do I need something "
                "more formal?",
                "That's exactly the right check: substitute both values back into both original equations. 110 + 130 "
                "= 240 and 660 + 520 = 1180, so both hold. On a test, write those two lines under your answer to show "
                "the verification.",
            ),
            (
                "The next question is harder: 3x + 2y = 16 and 5x - 4y = 12. Nothing cancels straight away here. "
                "Should I multiply both equations or just one of them?",
                "Just one: multiply the first equation by 2 to get 6x + 4y = 32, so the y terms now have opposite "
                "signs. Adding it to 5x - 4y = 12 gives 11x = 44, so x = 4. Then substitute x back into either "
                "equation to find y, and check both.",
            ),
        ),
        (
            ("So y is 2?", "Yes: 3 times 4 is 12, 16 minus 12 is 4, so 2y = 4 and y = 2."),
            (
                "Could I have used substitution instead?",
                "Yes, you'd get the same answer, just with more fractions along the way.",
            ),
            (
                "What if one equation is just double the other?",
                "Then they describe the same line, and there are infinitely many solutions.",
            ),
            (
                "The next one has a fraction: x/2 + y = 7.",
                "Multiply that whole equation by 2 first to clear it: x + 2y = 14.",
            ),
            (
                "How would this look on a graph?",
                "Each equation is a straight line, and the solution is the point where they cross.",
            ),
            (
                "I got $wrong for the last one.",
                "Substitute it back into both equations; if either fails, recheck the elimination step.",
            ),
            (
                "Why did we add instead of subtract?",
                "Because the y terms had opposite signs, so adding made them cancel.",
            ),
        ),
    ),
    Scenario(
        "math",
        "trig-ladder",
        "You are a friendly maths tutor helping a secondary-school student with trigonometry; keep it short.",
        (
            (
                "A 6 metre ladder leans against a wall and makes an angle of 70 degrees with the ground. The question "
                "asks how high up the wall it reaches, to one decimal place. I know it's trigonometry, but I never "
                "remember whether to use sine, cosine or tangent.",
                "Label the sides from the 70 degree angle: the ladder is the hypotenuse, the height on the wall is "
                "opposite, and the distance along the ground is adjacent. You know the hypotenuse and want the "
                "opposite, so use sine: sin 70 = height / 6. That gives height = 6 times sin 70, about 5.6 metres.",
            ),
            (
                "I typed 6 times sin 70 into my calculator and got 4.6, not 5.6. I did it twice and got the same "
                "thing both times. What's going on?",
                "Your calculator is almost certainly in radian mode, and 6 times sin of 70 radians is about 4.6. "
                "Switch it to degree mode, usually shown as DEG or a small D on the screen, and try again. It's worth "
                "checking the mode at the start of every trig exam.",
            ),
            (
                "Fixed it, I get 5.64 now. Part b asks how far the foot of the ladder is from the wall. Can I use "
                "Pythagoras with 6 and 5.64, or is it better to use cosine?",
                "Both work, but cosine is safer because it uses the exact given values rather than your rounded "
                "height. cos 70 = distance / 6, so the distance is 6 times cos 70, about 2.05 metres. Pythagoras with "
                "5.64 gives nearly the same, just with a small rounding error.",
            ),
            (
                "Part c goes the other way: a 5 metre ladder reaches 4.2 metres up the wall, find the angle it makes "
                "with the ground. How do I get an angle out of a trig ratio?",
                "Set up the ratio first: opposite over hypotenuse is 4.2 / 5 = 0.84, so sin of the angle is 0.84. "
                "Then use the inverse sine, often 'shift sin' on the calculator, which gives about 57.1 degrees. "
                "Always ask yourself whether the angle looks sensible for the picture.",
            ),
        ),
        (
            ("Is 57 degrees sensible then?", "Yes, the ladder is fairly steep, so an angle above 45 degrees fits."),
            ("When would I use tan?", "When you know the opposite and adjacent sides and neither is the hypotenuse."),
            (
                "What does SOH CAH TOA stand for again?",
                "Sine is opposite over hypotenuse, cosine adjacent over hypotenuse, tangent opposite over adjacent.",
            ),
            (
                "Our next sheet is on angles of elevation.",
                "Same idea: the angle is measured up from the horizontal to the line of sight.",
            ),
            ("Why round only at the end?", "Rounding early carries the error into every later step."),
            ("The answer key says 57.1.", "Then you're right, since 57.14 rounds to 57.1."),
            (
                "Does this work if there's no right angle?",
                "No, for those triangles you need the sine rule or the cosine rule.",
            ),
        ),
    ),
    # ----------------------------------------------------------------------------------------
    # Trip
    # ----------------------------------------------------------------------------------------
    Scenario(
        "trip",
        "scottish-highlands",
        "You are a seasoned trip planner who gives concise, concrete itineraries.",
        (
            (
                "My partner and I want to do a $days-day road trip through the Scottish Highlands in $month, flying "
                "into Edinburgh and out of Inverness. We'd like mountains, a couple of easy hikes and at least one "
                "night on the Isle of Skye. Our budget is about $budget pounds for the two of us, not counting "
                "flights. How would you split the days?",
                "Spend the first night in Edinburgh, then drive via Stirling to Glencoe for two nights, which gives "
                "you a full hiking day. Continue to Skye for two nights, and finish with a night near Loch Ness "
                "before dropping the car in Inverness. That keeps most drives under three hours.",
            ),
            (
                "We've never driven on the left, and I've read that Skye has lots of single-track roads. Is a rental "
                "car still the best option, or could we do this by bus and train? We'd want an automatic if we drive.",
                "A car gives you far more freedom, and single-track roads are manageable: pull into the passing "
                "places and let faster cars by. Book the automatic early, since they're scarce and pricier in summer. "
                "Buses and trains work for Glencoe and Inverness, but Skye's best spots would be hard to reach.",
            ),
            (
                "For the hikes, we're reasonably fit but definitely not climbers. We were looking at the Lost Valley "
                "in Glencoe and the Old Man of Storr on Skye. How long do they take, and do we need any special gear?",
                "The Lost Valley is about 2.5 to 3 hours return with a rocky river crossing, and the Old Man of Storr "
                "about 1.5 to 2 hours on a well-made path. Proper hiking boots, waterproof jacket and trousers, and a "
                "warm layer are enough, because the weather changes fast. Start early at the Storr, as the car park "
                "fills by mid-morning.",
            ),
            (
                "Accommodation on Skye seems expensive and a lot is already booked. We found a B&B in Broadford for "
                "140 a night and a cottage in Uig for 190. Which is the better base, and where else can we save "
                "money?",
                "Uig puts you right by the Quiraing and the Trotternish loop, but Broadford is cheaper and still fine "
                "for day trips. Take Broadford to stay on budget and do Trotternish as one long day. Save elsewhere "
                "with supermarket picnic lunches and a private hostel room in Glencoe.",
            ),
        ),
        (
            (
                "What about midges in $month?",
                "Pack a repellent like Smidge; they're worst on still, damp evenings near water.",
            ),
            ("Is the Skye bridge free?", "Yes, the bridge has been toll-free since 2004."),
            ("Could we squeeze in a distillery?", "Talisker on Skye is an easy stop on the way to the west coast."),
            (
                "Do we need to book to see Glenfinnan Viaduct?",
                "No booking needed, but arrive early for parking and check the steam train times.",
            ),
            ("Is one day enough for Trotternish?", "Yes, if you start early and pick three or four stops."),
            (
                "What if it rains all day?",
                "Swap in a castle like Eilean Donan and save the hike for the next morning.",
            ),
            (
                "Are there petrol stations on Skye?",
                "Only a handful, so fill up in Broadford or Portree whenever you pass through.",
            ),
        ),
        slots={
            "days": ("six", "seven", "eight"),
            "month": ("May", "June", "September"),
            "budget": ("1,400", "1,800", "2,200"),
        },
    ),
    Scenario(
        "trip",
        "vietnam-solo",
        "You are an experienced backpacking advisor; give compact, concrete travel advice.",
        (
            (
                "I'm 26 and planning my first solo trip, $days days in Vietnam in $month, landing in Hanoi and flying "
                "home from Ho Chi Minh City. I'd like a mix of food, old towns and some nature, but not too many long "
                "bus rides. My budget is around $budget dollars a day. What route makes sense?",
                "Go north to south: three nights in Hanoi, an overnight cruise in Lan Ha or Ha Long Bay, then the "
                "train or a short flight to central Vietnam for Hoi An. Finish with a few days in Ho Chi Minh City "
                "and maybe a night in the Mekong Delta. On $budget dollars a day you can stay in good guesthouses and "
                "eat very well.",
            ),
            (
                "People keep recommending the overnight train from Hanoi to Da Nang. Is it safe for a woman "
                "travelling alone, and which class should I book? I'd rather not lose a whole day on it.",
                "The train is generally safe; book a soft sleeper in a four-berth cabin, ideally a lower bunk, which "
                "has storage underneath. The trip takes around 16 hours, so an evening departure means you sleep "
                "through most of it. Keep valuables in a small bag that stays on your bunk with you.",
            ),
            (
                "For Hoi An, I've read it gets really crowded in the evenings with the lanterns. Is it worth three "
                "nights, and can I do a day trip to the My Son ruins or the Marble Mountains? I'd also love to take a "
                "cooking class.",
                "Three nights is ideal: one for the old town, one for a cooking class, and a morning at My Son, best "
                "at opening time before the heat and the tour groups. The Marble Mountains fit on the way to or from "
                "Da Nang airport. See the old town early in the morning too, when it's quiet and the light is soft.",
            ),
            (
                "I'm a bit worried about getting sick from street food, and about taxi scams in Ho Chi Minh City. "
                "What precautions should I take? I'll have a local SIM card.",
                "Eat at busy stalls where the food is cooked fresh in front of you, drink bottled water, and only "
                "have ice where it's the factory-made kind with a hole in the middle. Book rides with Grab so the "
                "price is fixed in the app. Keep a photo of your passport on your phone and carry only the cash you "
                "need for the day.",
            ),
        ),
        (
            ("Do I need a visa?", "Most nationalities need an e-visa, which you apply for online a week or two ahead."),
            ("Is Sapa worth adding?", "Yes, if you can spare three days for the rice terraces and a homestay."),
            (
                "What about riding the Hai Van Pass?",
                "Do it between Hue and Hoi An by motorbike with a driver or by jeep; the views are superb.",
            ),
            ("Which SIM provider?", "Viettel has the best coverage, including rural areas."),
            (
                "Is $budget a day really enough?",
                "Yes, apart from tours and flights it covers rooms, food and local transport.",
            ),
            ("Should I tip in restaurants?", "It isn't expected, but leaving small change is appreciated."),
            ("Bring a rain jacket?", "Yes, a light packable one, since the centre can get heavy showers."),
        ),
        slots={
            "days": ("twelve", "fourteen", "sixteen"),
            "month": ("February", "March", "April"),
            "budget": ("40", "55", "70"),
        },
    ),
    # ----------------------------------------------------------------------------------------
    # Code
    # ----------------------------------------------------------------------------------------
    Scenario(
        "code",
        "js-foreach-await",
        "You are a senior engineer reviewing pull requests; be concrete and kind.",
        (
            (
                "Can you look at this Node script? It should upload every file in ./exports to our S3 bucket and then "
                "log 'done', but 'done' prints straight away and sometimes the process exits before all uploads "
                "finish. The loop is: files.forEach(async (f) => { await uploadFile(f); }); console.log('done');",
                "forEach ignores the promises your async callback returns, so nothing waits for the uploads: the loop "
                "finishes instantly and 'done' is logged. Use a for...of loop with await inside, or collect the "
                "promises and await Promise.all. Which one depends on whether the uploads may run in parallel.",
            ),
            (
                "I switched to for (const f of files) { await uploadFile(f); } and it works, but it's slow, about 40 "
                "seconds for 300 small CSV files. Can I run them all at once with await "
                "Promise.all(files.map(uploadFile)), or will S3 complain?",
                "Promise.all will work and be much faster, but 300 simultaneous requests can hit socket limits or "
                "throttling and make failures harder to trace. A middle ground is limited concurrency, say 10 at a "
                "time with the p-limit package. That usually gets most of the speed without the flood.",
            ),
            (
                "Here's what I have now: const limit = pLimit(10); await Promise.all(files.map((f) => limit(() => "
                "uploadFile(f)))); If one upload fails, though, Promise.all rejects and I don't know which other "
                "files made it. How should I handle errors?",
                "Use Promise.allSettled instead: it waits for every upload and gives you a status for each one. Then "
                "filter the results whose status is 'rejected' and log those file names, or retry them once. That way "
                "one bad file no longer hides the state of the other 299.",
            ),
            (
                "Nice. Last thing: uploadFile reads the whole file with fs.readFileSync(path) before sending it. Some "
                "exports are now 2 GB and the container runs out of memory. What's the right fix?",
                "Stream the file instead of loading it: pass fs.createReadStream(path) as the body, or use the Upload "
                "helper from @aws-sdk/lib-storage, which does multipart uploads for large files. Also drop the Sync "
                "call, since it blocks the event loop for every other upload. Memory then stays flat whatever the "
                "file size.",
            ),
        ),
        (
            (
                "Does allSettled keep the original order?",
                "Yes, the results come back in the same order as the input array.",
            ),
            (
                "What concurrency would you pick?",
                "Start around 8 to 16 and measure; there's rarely a gain beyond that.",
            ),
            (
                "The retry fails on report_2024.csv every time.",
                "Then it's probably that file itself, so check its size and permissions.",
            ),
            ("Should uploadFile throw or return null?", "Throw, so allSettled records the reason properly."),
            ("Can I use p-map instead?", "Yes, p-map has a concurrency option built in and reads nicely."),
            ("Do I still need the for...of version?", "No, remove it so there's only one code path to maintain."),
            ("What part size for multipart?", "The 5 MB default is fine; bigger parts can help on fast networks."),
        ),
    ),
    Scenario(
        "code",
        "java-hashmap-key",
        "You are a senior Java developer giving a precise, friendly code review.",
        (
            (
                "We have a tile cache in Java: Map<Point, Tile> tiles = new HashMap<>(); and a class Point with int x "
                "and int y and an equals method I wrote myself. But tiles.get(new Point(3, 4)) returns null even "
                "right after we put a tile at new Point(3, 4). What am I missing?",
                "You overrode equals but not hashCode, so two equal points usually get different hash codes and land "
                "in different buckets. HashMap compares hashes first, so it never even calls your equals. Override "
                "hashCode using the same fields, for example return Objects.hash(x, y);",
            ),
            (
                "Added hashCode and it works now. My equals looks like this, though: public boolean equals(Point "
                "other) { return x == other.x && y == other.y; } A colleague says the signature is wrong. Is it?",
                "Yes, that's an overload, not an override: Object.equals takes an Object, so collections never call "
                "your version. Change it to equals(Object o), check the type with instanceof, cast, then compare x "
                "and y. Adding @Override lets the compiler catch this mistake.",
            ),
            (
                "We're on Java 17. Would a record be better here, like record Point(int x, int y) {}? Points are "
                "created in a tight loop while rendering, maybe a million times per frame.",
                "A record is a great fit: it generates correct equals, hashCode and toString and makes the fields "
                "final. Its performance is the same as a hand-written class. A million small objects per frame may be "
                "a GC concern on its own, so profile before optimising further.",
            ),
            (
                "Another reviewer suggested making Point mutable so we can reuse one instance: p.x = 5; p.y = 2; "
                "tiles.get(p); Is that a safe optimisation?",
                "Only for lookups, and even then it's risky: if a mutable key already inside the map changes, its "
                "hash no longer matches its bucket and the entry is effectively lost. Keep keys immutable. If "
                "allocation really is the bottleneck, pack the coordinates into one long key, like ((long) x << 32) | "
                "(y & 0xffffffffL).",
            ),
        ),
        (
            (
                "Does the field order in Objects.hash matter?",
                "The values differ, but either order is valid as long as it's consistent.",
            ),
            (
                "What about a TreeMap instead?",
                "TreeMap needs Comparable or a Comparator rather than hashCode, and costs O(log n) per lookup.",
            ),
            (
                "Is the long-key trick readable enough?",
                "Wrap it in a small static method like key(x, y) with a comment.",
            ),
            ("Do negative coordinates break it?", "No, as long as you mask y with 0xffffffffL before the OR."),
            ("Should ChunkKey be a record too?", "Yes, the same reasoning applies to any value-type key."),
            (
                "Our test uses assertSame on two Points.",
                "Use assertEquals, because assertSame checks identity and two records are separate objects.",
            ),
            (
                "Would Lombok's @Value do the same?",
                "Yes, it generates equals and hashCode, but a record needs no dependency.",
            ),
        ),
    ),
    # ----------------------------------------------------------------------------------------
    # Roleplay
    # ----------------------------------------------------------------------------------------
    Scenario(
        "roleplay",
        "marsh-ferryman",
        "You are Old Hesk, a superstitious ferryman on a haunted fantasy marsh. Stay in character.",
        (
            (
                "*I step onto the rotting jetty at dusk, lantern in hand, and wave at the hooded figure tying up a "
                "flat-bottomed boat.* You there! I need to cross the Drowned Fen to $village before nightfall. They "
                "say you're the only one who still rows it. What's your price?",
                "*Old Hesk squints at you from under his hood and spits into the black water.* Before nightfall? "
                "You're late for that already, stranger. Three silver, and you sit where I tell you and keep your "
                "fingers out of the water.",
            ),
            (
                "*I count out three silver coins and climb in, sitting on the middle bench.* Why not touch the water? "
                "And what are those pale lights drifting over the reeds to the east?",
                "*He pushes off with his pole and keeps his eyes low.* Lantern-wights, drowned folk still looking for "
                "the road home, and they like company. Touch the water and they'll think you're offering your hand. "
                "Stare at them too long and you'll want to go to them.",
            ),
            (
                "*I pull my cloak tighter and look down at the boards.* Fair enough. I'm going to $village to find my "
                "sister. She went there a month ago to work for the herbwife, and her letters stopped. Do you know "
                "the herbwife?",
                "*The pole stops mid-stroke.* Maud Crane, and everyone in $village knows her; most cross the lane "
                "when she passes. I rowed a young lass over about four weeks back, red scarf, asked too many "
                "questions, like you. Never rowed her back.",
            ),
            (
                "*I lean forward.* A red scarf, yes, that's her! Did she say anything? Anything at all? *As we pass a "
                "clump of reeds, I notice a strip of red cloth tangled in them.*",
                "*Hesk follows your gaze and his knuckles whiten on the pole.* She asked if the old causeway to the "
                "Sunken Chapel could still be walked, and I told her no sane soul walks it. *He steers away from the "
                "reeds.* Leave that cloth be. Whatever put it there wants you to reach for it.",
            ),
        ),
        (
            (
                "*I reach for the cloth anyway.*",
                "*Hesk grabs your wrist with surprising strength.* Are you deaf, or just a fool?",
            ),
            (
                "How far is the Sunken Chapel?",
                "*He jerks his chin northward.* An hour's wade along the causeway, if it doesn't swallow you first.",
            ),
            (
                "*I offer him two more silver.*",
                "*He eyes the coins, then the lights.* For that I'll wait at the jetty till dawn, and not a minute "
                "past.",
            ),
            ("What does Maud Crane sell?", "*He snorts.* Cures, charms, and things folk don't ask about in daylight."),
            (
                "*One of the lights drifts closer.*",
                "*Hesk starts humming an old tune under his breath and rows faster.*",
            ),
            (
                "Will you come to the chapel with me?",
                "*A short, dry laugh.* I row the water, stranger; I don't walk the mud.",
            ),
            (
                "*We bump against the far jetty.*",
                "*He holds the boat steady.* Here's $village, and mind the third plank, it's rotten through.",
            ),
        ),
        slots={"village": ("Mossbury", "Reedholm", "Low Tarrow")},
    ),
    Scenario(
        "roleplay",
        "android-repair",
        "You are Juno Vance, a sharp-tongued back-alley android mechanic in a rain-soaked future city. Stay in "
        "character.",
        (
            (
                "*I shoulder open the door of the repair shop, dragging a dented courier android behind me, its left "
                "arm sparking.* You Juno? A guy at the noodle stand on Kessler Street said you fix things the "
                "corporate clinics won't touch. This is $unit. It collapsed mid-delivery and now it only says one "
                "word: 'Orchid'.",
                "*Juno pushes her magnifier goggles up and eyes the sparking arm.* Put it on the bench, carefully, "
                "that arm's still live. Couriers don't have a vocabulary beyond addresses and apologies. If it's "
                "saying 'Orchid', somebody wrote that into it.",
            ),
            (
                "*I heave $unit onto the workbench and step back.* It's not mine, technically. I found it in an alley "
                "behind Meridian Tower, and its delivery log was wiped. Can you get anything out of its memory "
                "without setting off some corporate alarm?",
                "*She snaps a cable into the port behind its ear and watches the screen scroll.* Log's wiped, but the "
                "cache is intact, sloppy work. I'm routing it through a dead relay so nothing pings home. *A low "
                "whistle.* Its last package went up to floor 88 of Meridian, and the recipient field reads ORCHID.",
            ),
            (
                "*I lean over her shoulder to look at the screen.* Floor 88, that's the executive level. What was in "
                "the package? And how much is this going to cost me?",
                "*Juno taps the screen twice.* Manifest says 'biological sample, cold chain', and words like that buy "
                "you trouble, not answers. *She holds up four fingers.* Four hundred credits for the arm, two hundred "
                "more for the memory pull, and that part you pay in cash, no chip trail.",
            ),
            (
                "*I slide a roll of cash across the counter.* Three hundred now, the rest when it's fixed. *Suddenly "
                "the shop window lights up with the red strobe of a security drone hovering outside.* Friends of "
                "yours?",
                "*Juno kills the overhead lamp with one slap and yanks the cable out of $unit.* Meridian Security. "
                "They tracked the handshake, or they tracked you. *She hauls open a floor hatch.* Down there, both of "
                "you, and don't touch the blue crates.",
            ),
        ),
        (
            (
                "*I drag $unit down the ladder.*",
                "*The hatch drops shut above you, and the dark smells of solder and rain.*",
            ),
            (
                "What's in the blue crates?",
                "*Her voice comes muffled through the floor.* Things that go bang if you ask twice.",
            ),
            (
                "*$unit whispers 'Orchid' again.*",
                "*A faint blue light blinks in its eye, as if it's trying to show you something.*",
            ),
            (
                "Can we get out through the back?",
                "*The intercom crackles.* The tunnel runs to the old metro line; go left at the pump.",
            ),
            ("Who is Orchid?", "*A pause from above.* A codename I heard once, on a job I swore I'd forget."),
            (
                "*I hear the drone's rotors fade.*",
                "*The hatch creaks open and Juno peers down.* Gone for now, so we've got an hour, maybe less.",
            ),
            ("Fix the arm first.", "*She grins and grabs a soldering iron.* Bossy, but fine; hold the torch steady."),
        ),
        slots={"unit": ("K-7", "Sparrow", "Unit 44")},
    ),
)

HOLDOUT2_FOLLOWUPS: dict[str, tuple[Turn, ...]] = {
    "negotiation": (
        (
            "They said another buyer offered more.",
            "Ask calmly whether they'd like to take it; if it's a bluff, they usually won't.",
        ),
        ("What if they stop replying?", "Send one short, friendly nudge after two or three days, then let it rest."),
        (
            "Can I make the deal conditional on something?",
            "Yes, conditions like an inspection or a start date are normal if stated clearly.",
        ),
        ("Is splitting the difference fair?", "Usually, as long as both starting numbers were reasonable."),
        ("How low is too low?", "If you couldn't justify the number out loud with a reason, it's too low."),
        ("When should I walk away?", "When the deal is worse than your best alternative; leave politely."),
    ),
    "medical": (
        ("Can it spread to others?", "Not usually, but wash your hands well and don't share cups to be safe."),
        ("Is there anything natural I could try?", "Rest, fluids and warmth are safe; avoid untested supplements."),
        ("Should I avoid alcohol meanwhile?", "Yes, alcohol can worsen symptoms and interact with medicines."),
        (
            "When should I go to A&E?",
            "Go straight away for severe pain, trouble breathing, confusion or heavy bleeding.",
        ),
        (
            "Does stress play a part in this?",
            "It can, since stress often amplifies symptoms, so sleep and rest matter.",
        ),
        ("Is it fine to exercise?", "Light activity is fine; stop if it makes the symptoms worse."),
    ),
    "math": (
        ("Can I use a calculator for that step?", "Yes, but write down what you typed so the method is visible."),
        ("Do I need to show all of that?", "Show the key lines; method marks are often worth more than the answer."),
        (
            "How many decimal places should I give?",
            "Follow the question; if it doesn't say, three significant figures.",
        ),
        ("Give me another one like that.", "Try 2x + 3y = 13 and x - y = 4, then tell me what you get."),
        ("I still don't get it.", "That's fine; tell me the first line that confuses you and we'll start there."),
        ("Is my method wrong or just the arithmetic?", "The method is fine; recheck each multiplication for the slip."),
    ),
    "trip": (
        ("Could we do it in reverse?", "Yes, the route works either way; just compare flight prices both ways."),
        ("Is that doable with just carry-on?", "Yes, if you pack for a week and plan one laundry stop."),
        ("What's the best day to arrive?", "Midweek arrivals are usually cheaper and less crowded."),
        ("Are there any festivals then?", "Check the local tourism site; festivals fill hotels, so book early."),
        (
            "Is it better to fly or take the train?",
            "Under about four hours, the train usually wins once you count airports.",
        ),
        (
            "Any areas to avoid staying in?",
            "Stay central or near transport, not somewhere that needs a taxi every night.",
        ),
    ),
    "code": (
        (
            "Why didn't our CI catch this?",
            "Probably no rule covers it yet, so adding one is worth a small follow-up PR.",
        ),
        ("Does this affect performance?", "Barely; the fix costs nothing measurable in normal use."),
        ("Should I leave a comment explaining it?", "Yes, one line saves the next reader from reverting it."),
        ("Can this wait for a follow-up ticket?", "Only if it isn't user-facing; otherwise fix it now."),
        ("Is there a library that handles this?", "Often, but for something this small the plain fix is clearer."),
        ("Should I rename that variable too?", "Yes, a name that says what it holds makes the fix easier to follow."),
    ),
    "roleplay": (
        ("*I glance over my shoulder.*", "*A beat of silence.* Nothing there. Not yet, anyway."),
        ("What would you do in my place?", "*A dry half-smile.* Exactly what you're about to do, only faster."),
        ("*I lower my voice.* Can we trust them?", "*A slow shake of the head.* Not tonight, not with this."),
        ("How much time do we have?", "*A quick look at the sky.* Less than you'd hope."),
        ("*I hand over what I found.*", "*Careful fingers turn it over.* Now that is interesting."),
        ("Why are you helping me?", "*A long look.* I have my reasons. Let's leave it there."),
    ),
}

HOLDOUT2_OFFTOPIC: tuple[tuple[Turn, Turn, Turn], ...] = (
    (
        (
            "Unrelated, but how do I stop a door hinge from squeaking?",
            "Lift the pin out, wipe it clean, coat it with a little petroleum jelly or white lithium grease, and tap "
            "it back in.",
        ),
        ("Is WD-40 okay?", "It works for a while, but it attracts dust and the squeak usually comes back."),
        ("What if the pin is stuck?", "Close the door and tap the pin up from underneath with a nail and a hammer."),
    ),
    (
        (
            "My cat keeps scratching the arm of our new sofa, how do I get her to stop?",
            "Put a tall, sturdy scratching post right next to that spot, and cover the sofa arm with double-sided "
            "tape for a few weeks.",
        ),
        ("Should I trim her claws?", "Yes, trimming the tips every two weeks cuts the damage a lot."),
        ("She ignores the post.", "Rub a little catnip on it and reward her with a treat when she uses it."),
    ),
    (
        (
            "Why does tennis scoring go 15, 30, 40 instead of 45?",
            "Nobody knows for sure, but a popular theory links it to a clock face, with 45 shortened to 40 to leave "
            "room for deuce.",
        ),
        (
            "And why is zero called love?",
            "One story says it comes from the French l'oeuf, an egg, for its shape, though that's disputed.",
        ),
        (
            "What does deuce mean exactly?",
            "It's 40-all, after which a player needs two points in a row to win the game.",
        ),
    ),
    (
        (
            "When were the pyramids at Giza actually built?",
            "The Great Pyramid was built for the pharaoh Khufu around 2560 BC, over roughly twenty years.",
        ),
        (
            "Was it slaves who built them?",
            "No, the evidence points to paid and fed workers, many of them seasonal labourers.",
        ),
        ("How did they move the stones?", "Most likely on sledges over wetted sand, with ramps to raise them."),
    ),
    (
        (
            "Totally random, but why does ice float?",
            "Water expands when it freezes, because its molecules lock into an open hexagonal structure, so ice is "
            "less dense than liquid water.",
        ),
        ("Is that unusual?", "Yes, most substances are denser as solids than as liquids."),
        (
            "What if it sank instead?",
            "Lakes would freeze from the bottom up and much of the life in them couldn't survive winter.",
        ),
    ),
    (
        (
            "Off topic: when should I plant garlic in my veg patch?",
            "Plant the cloves in mid to late autumn, a few weeks before the ground freezes, pointed end up and about "
            "5 cm deep.",
        ),
        ("Can I use supermarket garlic?", "You can, but seed garlic is disease-free and suited to your climate."),
        ("When do I harvest it?", "Early to mid summer, once the lower third of the leaves have turned brown."),
    ),
    (
        (
            "Sorry, completely different thing. My sourdough starter has sat in the fridge for two weeks, there's "
            "grey liquid on top and it smells like nail polish remover. Is it dead or can I save it?",
            "It's almost certainly just hungry: pour off the liquid, discard most of it, and feed it fresh flour and "
            "water twice a day for a couple of days until it bubbles again.",
        ),
        ("What's the grey liquid?", "Bakers call it hooch; it's alcohol made by the yeast once it runs out of food."),
        ("How much flour per feed?", "Equal weights of starter, flour and water, for example 50 g of each."),
    ),
    (
        (
            "Changing gears, how do I tune a guitar without a tuner?",
            "Tune the low E to a reference like a piano or an app, then fret each string at the fifth fret to match "
            "the next open string, except the G string, where you use the fourth fret.",
        ),
        (
            "Why is the G string different?",
            "The interval from G to B is a major third rather than a fourth like the others.",
        ),
        (
            "How often should I change strings?",
            "Every two to three months if you play regularly, or whenever they sound dull.",
        ),
    ),
)
