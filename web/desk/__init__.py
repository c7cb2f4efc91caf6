"""The support desk under `/desk/`: server-rendered pages where people sign in, work the review
queue, reply to customers, correct sentiment labels and (admins) manage users and API keys.

`web.desk.app.build_desk_app` builds it as an application of its own that `cxbot serve` mounts;
every decision is made in bot/ (`bot.desk_work`, `bot.desk_users`, `bot.api_keys`).
"""
