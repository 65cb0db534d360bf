"""Third held-out split of scripted sessions for the topic-shift stress test.

Written blind (without seeing the detector or any result) on 2026-11-29 as a third held-out
split: two new scenarios per domain (``HOLDOUT3``), six new generic follow-ups per domain
(``HOLDOUT3_FOLLOWUPS``) and eight new casual off-topic threads (``HOLDOUT3_OFFTOPIC``). Same
shape as the other splits in ``drift_sessions.py``; texts use ``string.Template`` slots.
"""

from __future__ import annotations

from drift_sessions import Scenario, Turn

HOLDOUT3: tuple[Scenario, ...] = (
    # ----------------------------------------------------------------------------------------
    # negotiation
    # ----------------------------------------------------------------------------------------
    Scenario(
        "negotiation",
        "wedding-venue",
        "You are a pragmatic event-budget advisor who helps couples negotiate with vendors; keep answers brief.",
        (
            (
                "We're getting married next September and found a converted barn venue outside Harrogate that we "
                "love. The coordinator quoted $ask for a Saturday hire, which covers the barn, the garden for the "
                "ceremony and tables for 90 guests. Our whole venue budget was $offer. Is there any room to "
                "negotiate on a wedding venue, or are those prices fixed?",
                "There is usually room, especially for dates that are not booked solid yet. Ask whether a Friday, "
                "a Sunday or an early-autumn date comes cheaper, and mention your budget of $offer plainly. "
                "Coordinators would rather adjust a price than leave a date empty.",
            ),
            (
                "I asked about Fridays and she said a Friday hire is $counter, but Saturday is their busiest day "
                "and she can't go below $ask for it. Two other barns in the area charge between $low and $high, "
                "though one has no outdoor ceremony space. Should we switch to a Friday?",
                "A Friday at $counter saves real money, but guests may need a day off work, so check with your "
                "closest family first. You can mention the other barns as a gentle reference while saying you "
                "prefer hers. If Saturday matters a lot, ask what she could include rather than what she could cut.",
            ),
            (
                "We'd really prefer the Saturday. My fiancé suggested asking her to throw in the bridal suite for "
                "the night before and the chair covers, which are listed as extras at about 400 together. Is "
                "asking for extras smarter than asking for a discount?",
                "Often yes, because extras cost the venue less than they are worth to you, and the headline price "
                "stays intact for their records. Ask for both items in one message and say they would make the "
                "Saturday work for you; if she agrees to one, that is still a win.",
            ),
            (
                "She came back offering the bridal suite free and the Saturday at $mid if we pay a 50 percent "
                "deposit now instead of 25. We have the savings, but it's a big chunk to hand over eleven months "
                "ahead. Is that a reasonable condition?",
                "It is a common trade: the venue gets security and you get a lower price. Before paying, read the "
                "cancellation and postponement terms closely and ask what happens to the deposit if the venue "
                "closes or changes owners; pay by credit card if you can, for the extra protection.",
            ),
        ),
        (
            (
                "The cancellation policy says no refunds at all.",
                "Ask for a sliding scale instead, such as a partial refund if you cancel more than six months out.",
            ),
            (
                "Is $final too cheeky as a last counter?",
                "It is low but not insulting; offer it together with the bigger deposit and see how she reacts.",
            ),
            (
                "She mentioned a corkage fee too.",
                "Ask for the amount in writing, since corkage can add several hundred to the bill.",
            ),
            (
                "What about the marquee if it rains?",
                "Check whether the backup marquee is included or charged as a separate extra.",
            ),
            (
                "Should everything go in the contract?",
                "Yes, the date, the price, every agreed extra and the deposit terms must all be written in.",
            ),
            (
                "Her manager has to sign off first.",
                "That is normal; just give them a clear deadline, such as the end of the week.",
            ),
            (
                "And the late licence until 1am?",
                "Ask whether the later licence costs extra, because some barns charge by the hour after midnight.",
            ),
        ),
        {"ask": ("4800", "5600", "6400")},
    ),
    Scenario(
        "negotiation",
        "kitchen-remodel-quote",
        "You are an experienced homeowner's advocate who helps people negotiate with builders, in two or three "
        "sentences.",
        (
            (
                "A contractor quoted $ask to redo our small galley kitchen: new cabinets, a quartz worktop, tiling "
                "and moving the sink about a metre over to the window. He came recommended by a neighbour and seems "
                "competent. I was hoping to spend around $offer. How do I bring the price down without offending "
                "him?",
                "Start by asking for an itemised breakdown, because a single lump sum hides where the money goes. "
                "Once you see labour, materials and plumbing separately, you can discuss specific lines instead of "
                "haggling over the total. Keep the tone appreciative: you want him, just at a different number.",
            ),
            (
                "The breakdown shows about a third of the cost is cabinets, which he buys from a supplier with his "
                "markup, and moving the sink adds nearly 2,000 on its own. Two other quotes came in at $low and "
                "$high, but they were much vaguer. What should I push on?",
                "Those two lines are your levers: ask whether a cheaper door style or buying the cabinets yourself "
                "changes the price, and whether keeping the sink in place simplifies the job. The vaguer quotes "
                "are useful context, but mention them politely rather than waving them at him.",
            ),
            (
                "He said I can supply the cabinets but then he won't guarantee them, and he'd knock the total down "
                "to $counter if we keep the sink where it is. Honestly, the sink by the window was my wife's "
                "favourite part of the plan. Is there a middle way?",
                "Ask whether the sink can move without opening up the floor, since that is usually where the "
                "expense sits. You could keep his cabinets with the warranty and propose $mid with the sink move "
                "included, which gives him one clear number to say yes or no to.",
            ),
            (
                "He agreed to $mid with the sink moved, but he wants 40 percent up front before he orders anything "
                "and the rest at the end. The job is supposed to take five weeks starting in March. Is that much "
                "up front normal for a job like this?",
                "Forty percent is on the high side; stage payments tied to milestones, such as cabinet delivery, "
                "first fix and completion, protect you better. Propose a smaller deposit plus a payment when the "
                "cabinets arrive on site, and hold back a final 10 percent until everything is signed off.",
            ),
        ),
        (
            (
                "He said 25 percent is his minimum.",
                "That is acceptable as long as the remaining payments follow clear milestones.",
            ),
            (
                "What if the tiling runs over?",
                "Put a completion date in the contract, with a small agreed penalty for unexplained delays.",
            ),
            (
                "Could I offer $final and skip the splashback?",
                "Yes, dropping a line item is a fair way to reach a lower total.",
            ),
            (
                "Should I ask for his insurance certificate?",
                "Yes, ask for proof of public liability insurance before any work starts.",
            ),
            (
                "My wife wants the matte black taps now.",
                "Ask him to price the taps as a written variation before he orders them.",
            ),
            (
                "He'd give a discount for cash.",
                "Be careful, because cash without an invoice weakens your position if something goes wrong.",
            ),
            ("Is a handshake enough?", "No, get the scope, price and payment stages in a signed written contract."),
        ),
        {"ask": ("14500", "17200", "19800")},
    ),
    # ----------------------------------------------------------------------------------------
    # medical
    # ----------------------------------------------------------------------------------------
    Scenario(
        "medical",
        "heel-pain",
        "You are a careful clinical intake assistant who gives general information, not a diagnosis, in two or "
        "three sentences.",
        (
            (
                "I'm $age and for about $weeks weeks I've had a sharp pain in the bottom of my right heel, worst "
                "with the first steps after getting out of bed. It eases after ten minutes of walking but comes "
                "back when I stand at work for a long time. I started training for a half marathon in the spring. "
                "What could this be?",
                "That pattern of first-step pain under the heel is typical of plantar fasciitis, an irritation of "
                "the thick band of tissue along the sole. It is common when running mileage rises quickly or with "
                "long hours of standing, and a doctor or physiotherapist can confirm it with a short examination.",
            ),
            (
                "I wear flat canvas shoes at work, it's a warehouse job, and my running shoes are about three years "
                "old. There's no swelling or bruising and I can walk fine, it's just that stabbing feeling in the "
                "morning. What can I do myself for it?",
                "Supportive shoes with a cushioned heel make a real difference, so swap the flat canvas pair and "
                "consider replacing the old running shoes. Calf and sole stretches before getting out of bed, and "
                "rolling the arch over a frozen water bottle, often help as well.",
            ),
            (
                "A friend said to take $med for a week to calm it down. I've got a sensitive stomach and sometimes "
                "get heartburn. Is that a good idea, and is there anything else that relieves the pain?",
                "With a sensitive stomach, anti-inflammatories like $med can cause irritation, so ask a pharmacist "
                "first and take them with food if you do use them. Ice after activity and the stretches tend to "
                "give steadier relief, and heel cups or off-the-shelf insoles are cheap to try.",
            ),
            (
                "The race is in ten weeks and I really don't want to drop out. I've been running about 30 "
                "kilometres a week. Can I keep training through this, or do I need to stop completely?",
                "Many people can keep training if they cut the volume and the pain stays mild during and after "
                "runs. Swap some runs for cycling or swimming to keep your fitness without the impact, and see a "
                "physiotherapist if the pain gets worse from week to week.",
            ),
        ),
        (
            (
                "What about night splints?",
                "They hold the foot gently flexed overnight and help some people with strong morning pain.",
            ),
            (
                "My left heel started too.",
                "Both feet is common after shoe or training changes, but mention it if the pain keeps spreading.",
            ),
            (
                "Is a cortisone shot an option?",
                "It is sometimes used for stubborn cases, usually only after months of other treatment.",
            ),
            ("Can I still do hill repeats?", "Skip hills for now, since they load the sole and calf much harder."),
            ("Barefoot at home okay?", "Better to wear supportive slippers or shoes indoors while it heals."),
            (
                "There's a tingling along my arch now.",
                "Tingling can point to an irritated nerve, so have a clinician check it.",
            ),
            (
                "How many weeks until it's gone?",
                "Most cases ease over a few months, though some take longer to settle fully.",
            ),
        ),
        {
            "age": ("29", "36", "44", "58"),
            "weeks": ("three", "five", "six"),
            "med": ("ibuprofen", "naproxen"),
        },
    ),
    Scenario(
        "medical",
        "acid-reflux",
        "You are a careful clinical intake assistant who gives general information, not a diagnosis, in two or "
        "three sentences.",
        (
            (
                "I'm $age and for the last month I get a burning feeling behind my breastbone, mostly an hour "
                "after dinner and when I lie down at night. Sometimes there's a sour taste at the back of my "
                "throat. I recently moved to late shifts, so I often eat a big meal around 10pm. Could that be "
                "reflux?",
                "Burning behind the breastbone after meals and when lying down, with a sour taste, is the classic "
                "picture of acid reflux. Large late meals are a very common trigger, since a full stomach and a "
                "flat position let acid rise easily; any chest pain that feels different from this should be "
                "checked.",
            ),
            (
                "I do drink about four coffees a day to get through the shifts, and usually a beer or two after "
                "work. I've also put on about six kilos this year. Which of those matters most?",
                "All three can make reflux worse, and many people notice the biggest change from eating earlier "
                "and dropping the late alcohol. Coffee affects some people strongly and others hardly at all, so "
                "cut it down for two weeks and see; extra weight around the waist also presses on the stomach.",
            ),
            (
                "I've been taking $antacid from the supermarket almost every night and it helps for a few hours. "
                "Is it fine to keep using it daily? I don't take any other medication.",
                "Occasional $antacid is fine, but needing it nightly for weeks is a good reason to see your GP. "
                "They may suggest a short course of a stronger acid-reducing medicine and check whether anything "
                "else is going on, so bring a note of when symptoms happen and what you ate.",
            ),
            (
                "My sister says I should raise the head of my bed, and my partner thinks I should stop eating "
                "tomatoes and chocolate. I sleep on my right side most nights. Are any of these actually useful?",
                "Raising the head of the bed by 15 to 20 centimetres, with blocks under the legs rather than extra "
                "pillows, helps many people with night-time symptoms, and sleeping on the left side tends to reduce "
                "reflux. Food triggers vary, so a short food diary beats cutting everything at once.",
            ),
        ),
        (
            (
                "What if it's my heart?",
                "Pain on exertion, breathlessness, sweating or pain spreading to the arm needs emergency care.",
            ),
            (
                "I had trouble swallowing bread yesterday.",
                "Difficulty swallowing should be checked by a doctor soon rather than waited out.",
            ),
            (
                "Is peppermint tea okay?",
                "Peppermint can relax the valve at the top of the stomach and worsen reflux in some people.",
            ),
            (
                "Would chewing gum help?",
                "Chewing gum after meals increases saliva, which helps clear acid from the gullet.",
            ),
            ("How early should I eat dinner?", "Try to finish eating at least three hours before lying down."),
            (
                "Do I need a camera test?",
                "Only if symptoms persist despite treatment or warning signs such as weight loss appear.",
            ),
            (
                "My voice is hoarse in the mornings.",
                "Reflux can irritate the voice box, so mention the hoarseness to your GP.",
            ),
        ),
        {"age": ("34", "42", "51", "63"), "antacid": ("Gaviscon", "Rennie", "Tums")},
    ),
    # ----------------------------------------------------------------------------------------
    # math
    # ----------------------------------------------------------------------------------------
    Scenario(
        "math",
        "linear-systems",
        "You are a patient algebra tutor for a fifteen-year-old; explain each step briefly and clearly.",
        (
            (
                "My homework says solve the system 2x + 3y = 12 and 4x - y = 10 using elimination. The teacher "
                "showed substitution in class but wants us to practise both methods. I don't see which variable "
                "to get rid of first. Can you walk me through it?",
                "Pick the variable that is easiest to match: multiply the second equation by 3 to get "
                "12x - 3y = 30, so the y terms are opposites. Adding it to the first equation cancels y and leaves "
                "14x = 42, so x = 3.",
            ),
            (
                "Okay, so x = 3. Then I put it back into the first equation and got $wrong, but that doesn't work "
                "in the second equation. I think I messed up moving the 6 across. What should it be?",
                "Substitute x = 3 into 2x + 3y = 12: that gives 6 + 3y = 12, so 3y = 6 and y = 2. Check it in the "
                "other equation too: 4 times 3 minus 2 is 10, which matches, and when a check fails the slip is "
                "usually a sign error while moving a term.",
            ),
            (
                "Next one is 3x + 2y = 7 and 5x + 2y = 11. Both have 2y, so do I add them or subtract them? I "
                "always mix up when to do which.",
                "Subtract when the matching terms have the same sign, add when they have opposite signs. Here both "
                "are +2y, so subtract the first from the second to get 2x = 4 and x = 2; then 6 + 2y = 7 gives "
                "y = 1/2.",
            ),
            (
                "The last question is a word problem: a cinema sold 120 tickets, adults pay 9 and children pay 5, "
                "and they took 880 in total. I need to find how many adult tickets were sold. How do I turn that "
                "into two equations?",
                "Let a be adult tickets and c child tickets: a + c = 120 counts the tickets and 9a + 5c = 880 "
                "counts the money. Multiply the first by 5 and subtract it from the second to get 4a = 280, so "
                "a = 70 adults and c = 50 children.",
            ),
        ),
        (
            ("Why multiply by 5 there?", "So the c terms match and cancel when you subtract."),
            ("Could I use substitution instead?", "Yes, write c = 120 - a and put it into the money equation."),
            (
                "What if there's no solution?",
                "Then elimination leaves a false statement like 0 = 4, which means the lines are parallel.",
            ),
            (
                "And 6x + 4y = 14 with the first one?",
                "That is just 3x + 2y = 7 doubled, so there are infinitely many solutions.",
            ),
            ("Is 70 adults right then?", "Yes, 70 adults and 50 children give 630 plus 250, which is 880."),
            ("How would I graph it?", "Draw both lines; the point where they cross is the solution."),
            ("Do fractions mean I'm wrong?", "No, answers like y = 1/2 are perfectly normal."),
        ),
        {"wrong": ("y = 6", "y = -2", "y = 4")},
    ),
    Scenario(
        "math",
        "logarithms",
        "You are a patient math tutor for a high-school student; explain step by step and keep it short.",
        (
            (
                "We just started logarithms and I don't get what log base 2 of 8 even means. The textbook says "
                "it's 3 but I don't see why. Our test on Friday covers the log laws and solving exponential "
                "equations. Can you start from the basics?",
                "A logarithm answers the question: what power do I raise the base to, to get this number? Since "
                "2 to the power 3 is 8, log base 2 of 8 is 3, and every log statement is just an exponent "
                "statement written the other way round.",
            ),
            (
                "Okay, that makes sense. Now I have to simplify log 2 + log 50, where log means base 10. I tried "
                "multiplying 2 by 50 inside one log, but I'm not sure that's allowed. What's the rule?",
                "Yes, that is the product rule: log a + log b = log(ab). So log 2 + log 50 = log 100, and since "
                "10 squared is 100 the answer is 2; the matching quotient rule says log a - log b = log(a/b).",
            ),
            (
                "The next question says solve 2^x = 32 and then 3^x = 20. For the first I got $wrong, which I "
                "think is wrong, and for the second I have no idea because 20 isn't a power of 3. How do I handle "
                "each one?",
                "For 2^x = 32, write 32 as 2^5, so x = 5. For 3^x = 20, take logs of both sides: x log 3 = log 20, "
                "so x = log 20 / log 3, which is about 2.73, and that method works for any exponential equation.",
            ),
            (
                "Last is a word problem: a bacteria culture doubles every 4 hours, starting with 500 cells. How "
                "long until there are 12,000 cells? I wrote 500 times 2^(t/4) but then got stuck.",
                "Your model is right: set 500 times 2^(t/4) equal to 12000, so 2^(t/4) = 24. Taking logs gives "
                "t/4 = log 24 / log 2, about 4.585, so t is about 18.3 hours; as a check, there are 8000 cells "
                "after 16 hours and 16000 after 20.",
            ),
        ),
        (
            ("Why divide by log 2?", "Because t/4 is multiplied by log 2, so dividing isolates it."),
            ("Does it matter if I use ln?", "No, natural log gives the same answer if you use it on both sides."),
            ("So about 18 hours and 20 minutes?", "Yes, 0.34 of an hour is roughly 20 minutes."),
            ("What's log of 1?", "Zero in any base, because any base to the power zero is 1."),
            ("Can a log be negative?", "Yes, the log of a number between 0 and 1 is negative."),
            ("And the power rule?", "The log of a to the n equals n times log a."),
            (
                "My calculator says Math ERROR for log(-5).",
                "Logs of negative numbers are undefined in the real numbers, so the error is correct.",
            ),
        ),
        {"wrong": ("x = 16", "x = 6", "x = 4")},
    ),
    # ----------------------------------------------------------------------------------------
    # trip
    # ----------------------------------------------------------------------------------------
    Scenario(
        "trip",
        "scottish-highlands",
        "You are a seasoned travel planner who gives concrete, compact advice in two or three sentences.",
        (
            (
                "My partner and I are flying into Edinburgh in $month and want to spend $days days driving around "
                "the Scottish Highlands. We like hiking, whisky and quiet villages more than cities. Our budget for "
                "accommodation is about $budget pounds a night. Where should we base ourselves?",
                "Use two or three bases so you are not packing every day: Pitlochry for easy walks and "
                "distilleries, then Glencoe or Fort William for bigger hikes, then the Isle of Skye. Guesthouses "
                "and B&Bs there usually fit $budget pounds a night, but book Skye first, as it fills up months "
                "ahead.",
            ),
            (
                "We've never driven on the left, and the rental company offers a manual hatchback or an automatic "
                "SUV for a lot more. Some of the roads on Skye look like single track. Is driving there going to "
                "be stressful?",
                "Take the automatic if the price is bearable, so there is one less thing to think about while you "
                "adjust to the left. Single-track roads have passing places: pull into one on your left or wait "
                "opposite one on your right, and let faster locals overtake.",
            ),
            (
                "For hiking we're fit but not mountaineers, maybe five or six hours a day at most. We've read about "
                "Ben Nevis, the Quiraing and the Old Man of Storr. Which are worth it and which are too much?",
                "The Quiraing loop and the Old Man of Storr are short and spectacular, about two to three hours "
                "each, so go early to beat the crowds. Ben Nevis by the tourist path is a long eight-hour day with "
                "fast-changing weather, and the Lost Valley in Glencoe is a great three-hour alternative.",
            ),
            (
                "We'd like to visit a couple of distilleries, but one of us will always be driving. We also "
                "wondered about seeing puffins or dolphins somewhere along the route. Can we fit both in?",
                "Most distilleries offer driver's packs, so the driver takes the samples home in small bottles. "
                "Chanonry Point near Inverness is known for dolphins on a rising tide, and boat trips from Skye or "
                "Mull visit seabird colonies, with puffins around from late spring to early August.",
            ),
        ),
        (
            (
                "What about midges?",
                "Bring a repellent like Smidge and a head net, especially near still water in summer.",
            ),
            ("Is the Glenfinnan Viaduct worth a stop?", "Yes, the walk up to the viewpoint takes under an hour."),
            (
                "Do we need cash on Skye?",
                "Cards work almost everywhere, but carry a little cash for honesty boxes and small cafes.",
            ),
            ("Could we skip Pitlochry?", "Yes, drive straight to Glencoe and add a night on Skye instead."),
            (
                "The ferry from Mallaig, do we book it?",
                "Book it in summer, especially with a car, because it sells out.",
            ),
            ("How cold will it be?", "Expect 10 to 17 degrees with wind and showers, so pack layers and waterproofs."),
            (
                "Is Loch Ness overrated?",
                "The loch is pretty but busy, and Urquhart Castle is the one stop there worth making.",
            ),
        ),
        {"days": ("six", "seven", "eight"), "month": ("May", "June", "September"), "budget": ("140", "170", "200")},
    ),
    Scenario(
        "trip",
        "vietnam-by-train",
        "You are an experienced travel planner for budget travellers; give concrete, compact suggestions.",
        (
            (
                "I'm travelling solo through Vietnam for $days days in $month, starting in Hanoi and ending in Ho "
                "Chi Minh City. I'd like to take the train for at least part of the way instead of flying "
                "everything. I'm 31, on a backpacker budget, and into food and history. How would you split the "
                "route?",
                "A classic split is three days in Hanoi, two in Ninh Binh or Ha Long, then the train south to Hue, "
                "Hoi An and finally Ho Chi Minh City. Hanoi to Hue is an overnight train of around 13 hours, and "
                "keep two or three days at the end for the Mekong Delta if you can.",
            ),
            (
                "On the overnight train there are hard sleepers and soft sleepers, four-berth and six-berth "
                "cabins. I'm a light sleeper and I'm carrying a big backpack. Which should I book, and how far "
                "ahead?",
                "Book a soft sleeper in a four-berth cabin; it is quieter and the price difference is small. Your "
                "backpack fits under the lower bunk or on the shelf above the door, and in busy months you should "
                "book one or two weeks ahead.",
            ),
            (
                "What's the weather like along the coast in $month? I've read the centre can get heavy rain at "
                "certain times of the year, and I'd like to swim in Hoi An. Should I change the order?",
                "The centre around Hue and Hoi An has its rainy season from roughly September to December, so "
                "November can be wet and even stormy, while February and March are drier, with better swimming by "
                "March. Keep the north-to-south order, as Hanoi is cool but pleasant in those months.",
            ),
            (
                "I'm also torn between Ninh Binh and a Ha Long Bay cruise. The cruises look expensive, and I've "
                "heard Ninh Binh has similar limestone scenery with rivers and rice fields. Which fits better on a "
                "budget?",
                "Ninh Binh is cheaper and easy to reach from Hanoi by bus or train, with rowing-boat trips through "
                "caves and bike rides among the rice fields. A Ha Long cruise is more about sea views and a night on "
                "the water, so on a tight budget two nights in Ninh Binh give you more for the money.",
            ),
        ),
        (
            ("Do I need a visa?", "Most visitors need an e-visa, applied for online before arrival."),
            (
                "What about the Hai Van Pass by motorbike?",
                "It is a famous ride, and you can hire a driver for it if you are not confident on a bike.",
            ),
            ("Is street food safe?", "Generally yes at busy stalls where the food is cooked fresh in front of you."),
            ("Should I get a local SIM?", "Yes, a local SIM with data is cheap and sold at the airport."),
            (
                "How much is the Hanoi to Hue ticket?",
                "A soft sleeper usually costs the equivalent of about 40 to 60 US dollars.",
            ),
            ("Can I get tailored clothes in Hoi An?", "Yes, but allow two or three days for fittings."),
            ("Skip the Mekong Delta?", "If you're short on time, a day trip from Ho Chi Minh City is enough."),
        ),
        {"days": ("twelve", "fourteen", "sixteen"), "month": ("February", "March", "November")},
    ),
    # ----------------------------------------------------------------------------------------
    # code
    # ----------------------------------------------------------------------------------------
    Scenario(
        "code",
        "rust-borrow-checker",
        "You are a senior engineer reviewing code with care; be precise and friendly in two or three sentences.",
        (
            (
                "I'm learning Rust and this won't compile: `let mut scores = vec![3, 7, 1]; let first = "
                '&scores[0]; scores.push(9); println!("{}", first);`. The error says cannot borrow `scores` as '
                "mutable because it is also borrowed as immutable. Why is pushing a problem if I only read first?",
                "Pushing may reallocate the vector's buffer, which would leave first pointing at freed memory, so "
                "Rust forbids the mutable borrow while the shared reference is still in use. Because first is used "
                "in the println after the push, copy the value with let first = scores[0]; or move the println up.",
            ),
            (
                "Okay, copying works for integers. But in my real code it's a Vec<String> called names, and I need "
                "the first name after adding more: `let first = &names[0]; names.push(new_name); greet(first);`. "
                "Copying isn't possible with String, right?",
                "Right, String is not Copy, but let first = names[0].clone(); gives you an owned string that is "
                "independent of the vector, and cloning a short string is cheap. Alternatively, keep the index and "
                "look it up after the push with greet(&names[0]).",
            ),
            (
                "Now I have `fn longest(a: &str, b: &str) -> &str { if a.len() > b.len() { a } else { b } }` and "
                "the compiler wants a lifetime specifier. I've read the chapter on lifetimes twice. What does it "
                "want from me here?",
                "The compiler cannot tell whether the result borrows from a or from b, so you say it lives no "
                "longer than both: fn longest<'a>(a: &'a str, b: &'a str) -> &'a str. The annotation changes no "
                "lifetimes; it only describes the relationship so that callers can be checked.",
            ),
            (
                "Last thing: my struct is `struct Parser { tokens: Vec<Token>, pos: usize }` with `fn peek(&self) "
                "-> &Token` and `fn advance(&mut self)`. When I write `let t = self.peek(); self.advance(); match t "
                "{ ... }` I get the same borrow error again. How do people usually structure this?",
                "The reference from peek keeps self borrowed until t is last used, so advance cannot take "
                "&mut self in between. The usual fixes are to clone the token, derive Copy on a small TokenKind "
                "and return that from peek, or finish the match before calling advance.",
            ),
        ),
        (
            (
                "Token has a String field though.",
                "Then clone it, or match on the reference first and advance afterwards.",
            ),
            (
                "Is clone considered bad practice?",
                "No, cloning is fine when the data is small or the code gets much simpler.",
            ),
            (
                "What about Rc<RefCell<Token>>?",
                "That moves borrow checks to runtime, so use it only when you really need shared ownership.",
            ),
            (
                "Clippy warns about needless_range_loop in lexer.rs.",
                "Iterate with for (i, c) in chars.iter().enumerate() instead of indexing by hand.",
            ),
            ("Would 'static fix it?", "No, 'static claims the data lives forever, which your tokens don't."),
            ("And for the error type?", "Define a ParseError enum and implement std::fmt::Display for it."),
            (
                "Does all this slow the code down?",
                "No, borrow checks happen at compile time and cost nothing when the program runs.",
            ),
        ),
    ),
    Scenario(
        "code",
        "django-n-plus-one",
        "You are a senior backend engineer doing a friendly, precise review of a Django codebase.",
        (
            (
                "Our Django order list page takes four seconds to load with only 200 orders. The view does "
                "`orders = Order.objects.filter(shop=shop)` and the template loops `{% for o in orders %}"
                "{{ o.customer.name }} {{ o.items.count }}{% endfor %}`. The debug toolbar shows over 400 queries. "
                "What is going on?",
                "That is the classic N+1 problem: each o.customer triggers one query and each o.items.count "
                "another, so 200 orders produce about 400 extra queries. Add select_related('customer') to fetch "
                "customers in the same join, and annotate the item counts instead of counting in the template.",
            ),
            (
                "I changed it to `Order.objects.filter(shop=shop).select_related('customer')"
                ".annotate(n_items=Count('items'))` and use `o.n_items` in the template. Queries dropped to 3, but "
                "now some orders show double the real item count. Why would annotate do that?",
                "Count over a join multiplies rows when the same query also joins another many-valued relation, "
                "for example through a second annotation or a filter on a related table. Use "
                "Count('items', distinct=True), and look for any other annotate on a reverse relation.",
            ),
            (
                "There's a manager method that adds `.annotate(n_payments=Count('payments'))`, yes. I added "
                "distinct=True to both. The template also lists each order's products with `{% for it in "
                "o.items.all %}{{ it.product.title }}{% endfor %}`. Is that another N+1?",
                "Yes, o.items.all runs a query per order and it.product another per item. Use "
                "prefetch_related('items__product') so Django fetches all items and products in two extra queries, "
                "but note the prefetch is bypassed if you call .filter() on the relation later.",
            ),
            (
                "Our test suite doesn't catch any of this; the tests only check the status code. Someone suggested "
                "assertNumQueries. How would I use it for this view so the test fails if someone reintroduces the "
                "problem?",
                "Wrap the request as with self.assertNumQueries(5): self.client.get(url), using the count you see "
                "now. Create at least three orders with several items each in setUp, so any per-row query would "
                "change the total, and update the number only when a change is deliberate.",
            ),
        ),
        (
            ("Should I use only() too?", "Only if the models have large fields that this page never displays."),
            ("What about the admin list page?", "Set list_select_related on the ModelAdmin to get the same join."),
            (
                "The CSV export in reports.py is slow too.",
                "Apply the same select_related there and use iterator() to keep memory low.",
            ),
            ("Is 5 queries good?", "Yes, a small constant number that doesn't grow with the rows is the goal."),
            ("Does caching help here?", "Fix the queries first, because caching on top of N+1 only hides it."),
            (
                "Why does distinct slow it a bit?",
                "The database has to deduplicate rows before counting, which costs some time.",
            ),
            (
                "Can I see the SQL it runs?",
                "Print str(queryset.query) or open the SQL panel in the debug toolbar.",
            ),
        ),
    ),
    # ----------------------------------------------------------------------------------------
    # roleplay
    # ----------------------------------------------------------------------------------------
    Scenario(
        "roleplay",
        "lighthouse-mystery",
        "You are the narrator of an atmospheric mystery role-play; describe each scene vividly in two or three "
        "sentences and let the user act.",
        (
            (
                "*I step off the supply boat onto the slick rocks of Skerrow Island, pulling my coat tight against "
                "the gale.* I'm the inspector sent from the mainland because the lighthouse went dark three nights "
                "ago and the keeper, $name, hasn't answered the radio. *I look up at the tower.* Is there any light "
                "or movement up there?",
                "*The tower rises black against the bruised sky, its great lamp dead, and the wind shrieks through "
                "the gallery railings.* The door at the base is unlatched and knocks against its frame in the "
                "gusts. *Below the steps, a single gumboot lies on its side, half full of rainwater.*",
            ),
            (
                "*I pick up the gumboot and check the size, then push the door open with my shoulder and shine my "
                "torch inside.* Hello? $name, it's the Lighthouse Board! *I sweep the beam slowly across the ground "
                "floor.*",
                "*Your torch finds an overturned chair, a cold kettle on the stove and a logbook open on the table, "
                "its last entry dated four nights ago.* The writing breaks off mid-sentence: 'Lights again on the "
                "water to the north, not a ship, they do not move with the'. *Somewhere above, a slow dripping "
                "echoes down the spiral stair.*",
            ),
            (
                "*I tuck the logbook into my satchel and climb the spiral stairs slowly, keeping the torch low.* I "
                "want to reach the lamp room and see whether the mechanism was sabotaged or simply failed. *I stop "
                "at every landing to listen.*",
                "*At the third landing you hear it clearly: not dripping but a steady tapping, like a fingernail on "
                "glass, from the lamp room above.* At the top the great lens is intact, but the clockwork that "
                "turns it is jammed by a brass key wedged between the gears. *Far out on the black water, three pale "
                "green lights hang perfectly still.*",
            ),
            (
                "*I pull the brass key free and examine it under the torch, looking for marks or initials.* Then I "
                "want to restart the mechanism and get the lamp burning, so any ship out there can see us. *I "
                "search the room for fuel and matches.*",
                "*The key is old and heavy, engraved with a tiny anchor and the letters S.V. 1894.* You find "
                "paraffin and matches in a locker, and with a groan the gears turn as the wick catches and light "
                "floods over the sea. *The moment the beam sweeps north, the three green lights go out, one after "
                "another.*",
            ),
        ),
        (
            (
                "*I grab the binoculars and look north.*",
                "*You see only heaving black waves, then, briefly, a small rowing boat with nobody in it.*",
            ),
            (
                "I radio the mainland.",
                "*The radio hisses with static, then a faint voice repeats a string of numbers and cuts out.*",
            ),
            (
                "Who is S.V.?",
                "*The logbook's inside cover lists former keepers, and one name beside 1894 is scratched out.*",
            ),
            (
                "*I read the earlier pages of the logbook.*",
                "*Every entry this week mentions the green lights, and the handwriting grows shakier each day.*",
            ),
            (
                "I call out for $name again.",
                "*Only the wind answers, but far below a door you had not noticed creaks open.*",
            ),
            (
                "*I lock the lamp room door behind me.*",
                "*The lock clicks, and a moment later the tapping starts again, now on the other side of the door.*",
            ),
            (
                "Is there a cellar?",
                "*Behind the stove, a trapdoor is set into the floor, its iron ring wet with brine.*",
            ),
        ),
        {"name": ("Ewan", "Marguerite", "Tobias")},
    ),
    Scenario(
        "roleplay",
        "desert-caravan",
        "You are the game master of a fantasy role-play set in a desert realm; narrate in two or three vivid "
        "sentences.",
        (
            (
                "*I adjust the scarf over my face and swing up onto my camel at the edge of the oasis town of Qar "
                "Tamim.* I'm a hired sword guarding the spice caravan of the merchant $name across the Glass Dunes "
                "to the coast. *I ride to the front of the line.* What do I see ahead, and how much are we "
                "protecting?",
                "*Twelve heavily laden camels and four creaking sand-sledges stretch behind you, their bells "
                "chiming softly in the morning heat.* Ahead, the Glass Dunes glitter like a sea of broken mirrors "
                "under a trembling haze. *$name rides up beside you and points at a dark smudge on the horizon: "
                "'The Spine. We must pass it before nightfall.'*",
            ),
            (
                "*I shade my eyes and study the Spine.* What's so dangerous about it that we must pass before "
                "dark? *I ask $name, keeping my voice low so the drivers don't hear.* And is there anything you "
                "haven't told me about this cargo?",
                "*$name hesitates, then leans close: 'The Spine is a ridge of black rock where the sand wraiths "
                "hunt after sunset, and the third sledge carries more than saffron.'* A corner of its tarp is "
                "pulled back to reveal a sealed clay urn, warm to the touch and humming faintly. *'A djinn's "
                "vessel, promised to the Sultan of Meris. Do not open it.'*",
            ),
            (
                "*I nod and ride on, but my hand stays near my sword.* By late afternoon I want to scout ahead on my "
                "own and make sure the pass through the Spine is clear. *I tell the caravan to wait at the last "
                "well and head out alone.*",
                "*The black rocks of the Spine are hot enough to burn through your gloves, and the narrow pass "
                "twists between them like a dry riverbed.* Halfway through you find a wrecked wagon with its wheels "
                "stripped, and fresh footprints that end abruptly in open sand. *From the rocks above, a pebble "
                "clatters down, and then another.*",
            ),
            (
                "*I draw my sword and press my back against the rock wall, scanning the ridge.* Whoever is up "
                "there, show yourself! I'm not here for a fight. *I keep one eye on the strange footprints.*",
                "*A wiry girl of about fourteen rises from behind a boulder, a loaded sling aimed at your head, "
                "dressed in the faded blue of the desert nomads.* 'Those are my brother's footprints,' she says, "
                "'the wraiths took him at dusk yesterday, and tonight they will come for your caravan.' *She "
                "glances at the sinking sun, already touching the dunes.*",
            ),
        ),
        (
            ("*I lower my sword.* What's your name?", "*'Nadira,' she says, keeping the sling raised.*"),
            ("Can the wraiths be killed?", "*'Only with fire and salt,' she answers, touching a pouch at her belt.*"),
            (
                "*I ride back to warn $name.*",
                "*By the time you reach the well, the camels' shadows stretch long across the sand.*",
            ),
            (
                "Do we have salt in the cargo?",
                "*$name nods grimly toward two barrels of rock salt meant for trade at the coast.*",
            ),
            (
                "*I light a torch and circle the wagons.*",
                "*The flame gutters in a sudden wind, and out in the dunes the sand begins to ripple.*",
            ),
            ("What's the urn doing now?", "*It hums louder than before, and the tarp over it glows a faint orange.*"),
            (
                "*I ask Nadira to ride with us.*",
                "*She hesitates, then climbs up behind you and grips your belt.*",
            ),
        ),
        {"name": ("Khalida", "Oren", "Samira")},
    ),
)

HOLDOUT3_FOLLOWUPS: dict[str, tuple[Turn, ...]] = {
    "negotiation": (
        ("What if they walk away?", "Let them; a polite follow-up a few days later often restarts the talks."),
        ("Should I mention a competing offer?", "Only if it is real and you would actually take it."),
        ("How long should I wait for a reply?", "Two or three working days is normal before a short reminder."),
        ("Is it worth splitting the difference?", "Often, if the middle number is still within your limit."),
        ("Do I need this in writing?", "Yes, confirm every agreed number and condition by email at least."),
        ("What's my walk-away number?", "Set it before the next conversation, based on your budget and options."),
    ),
    "medical": (
        ("Can I exercise with this?", "Gentle movement is usually fine; stop if it clearly makes things worse."),
        ("Does diet make a difference?", "It can; regular meals, enough water and less alcohol help many people."),
        ("When should I see a doctor?", "If it lasts beyond two weeks, keeps worsening or wakes you at night."),
        ("Could it be stress?", "Stress can worsen many symptoms, but don't assume it without a proper check."),
        ("Will it come back?", "It can recur, so keep up the habits that helped once it settles."),
        ("What should I tell the pharmacist?", "Your symptoms, how long they've lasted and any medicines you take."),
    ),
    "math": (
        ("I still don't get it.", "Let's try a simpler example with small numbers first."),
        ("Why does that step work?", "Doing the same operation to both sides keeps the equation balanced."),
        ("How do I check my answer?", "Put it back into the original problem and see if both sides agree."),
        ("Do I have to show all the working?", "Yes, most marks come from the method, not the final answer."),
        ("Can you give me a practice question?", "Sure, try the same type with new numbers and send me your result."),
        ("Is a calculator allowed for this?", "Check the exam rules, but practise by hand either way."),
    ),
    "trip": (
        ("Is it safe for tourists?", "Yes, with normal precautions like watching your bag in crowded places."),
        ("Do I need to book ahead?", "For popular places in high season, yes, a few weeks in advance."),
        ("What should I pack?", "Comfortable walking shoes, layers and a light rain jacket cover most days."),
        ("How do I get around there?", "Public transport covers the main routes; rent a car only for remote areas."),
        ("Any tips for eating cheaply?", "Eat your main meal at lunch, when set menus are much cheaper."),
        ("Is travel insurance worth it?", "Yes, especially for medical cover and cancelled transport."),
    ),
    "code": (
        ("Can you show the fixed version?", "Sure, paste the full function and I'll rewrite the problem lines."),
        ("Is this a common mistake?", "Very common; most developers hit it at least once."),
        ("Should I add a test for this?", "Yes, a small regression test stops the bug from coming back."),
        ("Does it matter for performance?", "Mostly at larger scale; correctness is the main reason to change it."),
        ("What would you name this function?", "Something that says what it returns, not how it works."),
        ("Will the linter catch this next time?", "Some rules do, so enable the stricter preset in your CI."),
    ),
    "roleplay": (
        ("*I look around carefully.*", "*You notice details you missed before, and one of them does not belong.*"),
        ("What do I hear?", "*A faint sound drifts toward you, too regular to be the wind.*"),
        ("*I wait and stay quiet.*", "*Moments pass, then something shifts in the shadows nearby.*"),
        ("Can I trust them?", "*Their eyes flick away for a moment before they answer.*"),
        ("*I check my supplies.*", "*A little food, some water and a few tools, enough for one more night.*"),
        ("I run.", "*You run, and behind you something starts to follow.*"),
    ),
}

HOLDOUT3_OFFTOPIC: tuple[tuple[Turn, Turn, Turn], ...] = (
    (
        (
            "Unrelated, but my sourdough starter smells like nail polish remover. Is it dead?",
            "No, that smell means it's hungry; discard most of it and feed it flour and water twice a day for a "
            "few days.",
        ),
        ("How much flour per feed?", "Equal weights of flour and water, around 50 grams each, works well."),
        (
            "Can I keep it in the fridge?",
            "Yes, then feed it weekly and give it a day at room temperature before baking.",
        ),
    ),
    (
        (
            "My cat keeps scratching the arm of our new sofa. We've tried spraying water at her, but she just waits "
            "until we leave the room. How do I make her stop?",
            "Put a tall, sturdy scratching post right next to that sofa arm and cover the arm with double-sided "
            "tape for a few weeks.",
        ),
        (
            "She ignores the post we have.",
            "Many cats prefer another texture, so try sisal rope or a flat cardboard scratcher.",
        ),
        ("Would catnip on it help?", "Yes, rubbing catnip on the post often makes it more attractive."),
    ),
    (
        (
            "How does an LBW decision work in cricket?",
            "The batter is out leg before wicket if the ball would have hit the stumps but struck their leg first, "
            "with a few conditions on where it pitched.",
        ),
        ("What if it pitched outside leg stump?", "Then it can't be out LBW, whatever happens next."),
        ("And DRS?", "DRS lets a team ask for ball-tracking replays to review the umpire's decision."),
    ),
    (
        (
            "Totally off topic: why did the Titanic sink in under three hours?",
            "The iceberg breached five or six of the forward watertight compartments, more than the four the ship "
            "could survive, so water spilled from one into the next.",
        ),
        ("Weren't there enough lifeboats?", "No, there were lifeboats for only about half of the people on board."),
        ("Where is the wreck now?", "About 3,800 metres down in the North Atlantic, south of Newfoundland."),
    ),
    (
        (
            "How do noise-cancelling headphones actually work?",
            "Microphones pick up outside sound and the headphones play an inverted wave that cancels it, mostly for "
            "steady low-frequency noise.",
        ),
        (
            "Why do voices still get through?",
            "Voices are higher-pitched and change quickly, so the cancellation can't keep up as well.",
        ),
        ("Is it bad for your ears?", "No, and it can help because you don't need to turn the volume up."),
    ),
    (
        (
            "Our toilet keeps hissing and refilling every twenty minutes even when nobody uses it. I'm not very "
            "handy, is this something I can fix myself?",
            "Probably: a worn flapper at the bottom of the tank is the usual cause, and replacing it is a cheap, "
            "tool-free job.",
        ),
        (
            "How do I know it's the flapper?",
            "Add a few drops of food colouring to the tank; if colour reaches the bowl without flushing, it leaks.",
        ),
        (
            "Do I need to turn off the water?",
            "Yes, close the valve behind the toilet and flush to empty the tank first.",
        ),
    ),
    (
        (
            "Changing gears completely: I just bought a ukulele, which chords should I learn first?",
            "Start with C, A minor, F and G; together they let you play hundreds of songs.",
        ),
        ("My fingertips really hurt.", "That's normal at first; short daily practice builds calluses quickly."),
        ("How do I tune it?", "Standard tuning is G C E A, and a free tuner app makes it easy."),
    ),
    (
        (
            "Something keeps eating holes in my lettuce overnight and I find slimy trails in the morning.",
            "That's slugs or snails; pick them off with a torch after dark and sink a few beer traps into the soil.",
        ),
        (
            "Are the blue pellets safe for my dog?",
            "Not all of them; choose ferric phosphate pellets, which are much safer for pets, and use them sparingly.",
        ),
        ("Do copper tapes work?", "They help a little around pots and raised beds, but won't stop slugs entirely."),
    ),
)
