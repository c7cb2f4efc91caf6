"""The bot's own words (hints, help, confirmations), per language; flows hold the questions."""

from __future__ import annotations

from collections.abc import Mapping

TEXTS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "hint_empty": "Please type an answer.",
        "hint_not_a_number": "Please answer with a number from {min} to {max}.",
        "hint_out_of_range": "That's outside the scale: please pick a number from {min} to {max}.",
        "hint_ambiguous": "Please give just one whole number from {min} to {max}.",
        "hint_unknown_choice": "Please pick one of the options (you can type its number).",
        "hint_not_yes_no": "Please answer yes or no.",
        "hint_stale_button": "That button belongs to an earlier question. Here is the current one:",
        "hint_required": "This question needs an answer to go on.",
        "hint_skip": "You can type 'skip' to leave this one out.",
        "help": (
            "I'm collecting your feedback. Answer each question by typing or with the buttons. "
            "Type 'skip' to leave out an optional question, or 'stop' to stop receiving surveys."
        ),
        "opted_out": (
            "Done: you won't receive any more surveys from us. "
            "If you change your mind, send 'start'."
        ),
        "still_opted_out": (
            "You've unsubscribed from our surveys, so I won't ask you anything. "
            "Send 'start' if you'd like to give feedback again."
        ),
        "no_survey": "There's no survey open right now. Send 'start' to give us feedback.",
        "late_comment": "Thanks, we've added this to your feedback.",
        "truncated": "(Your message was long, so we kept the first {limit} characters.)",
        "resume": "Welcome back! Let's pick up where we left off.",
        "undelivered": "Sorry, my last message didn't reach you. Here it is again:",
        "thanks": "Thank you for your feedback!",
        "unsupported": "Sorry, I can only read text messages and button presses here.",
        "yes": "Yes",
        "no": "No",
        "already_answered": "Already answered: {label}",
        "closed": "This question is closed; please use the latest message.",
        "bad_link": "Sorry, that link is not valid any more, so here is our general survey.",
        "reminder": "Reminder: {question}",
        "expired": "This survey has closed — thanks, we kept your note.",
        "confirm_score": "Did you mean {value} out of {max}?",
        "confirm_declined": "OK, let's try again.",
        "flood": (
            "You're sending messages faster than I can read them, so I'll pause for a moment. "
            "Please wait a minute, then carry on."
        ),
    },
    "es": {
        "hint_empty": "Por favor, escribe una respuesta.",
        "hint_not_a_number": "Responde con un número del {min} al {max}, por favor.",
        "hint_out_of_range": "Está fuera de la escala: elige un número del {min} al {max}.",
        "hint_ambiguous": "Indica un solo número entero del {min} al {max}, por favor.",
        "hint_unknown_choice": "Elige una de las opciones (puedes escribir su número).",
        "hint_not_yes_no": "Responde sí o no, por favor.",
        "hint_stale_button": "Ese botón es de una pregunta anterior. Esta es la pregunta actual:",
        "hint_required": "Necesitamos una respuesta a esta pregunta para continuar.",
        "hint_skip": "Puedes escribir 'saltar' para omitirla.",
        "help": (
            "Estoy recogiendo tu opinión. Responde escribiendo o con los botones. "
            "Escribe 'saltar' para omitir una pregunta opcional o 'baja' para no recibir más "
            "encuestas."
        ),
        "opted_out": ("Hecho: no recibirás más encuestas. Si cambias de opinión, envía 'empezar'."),
        "still_opted_out": (
            "Te diste de baja de nuestras encuestas, así que no te preguntaré nada. "
            "Envía 'empezar' si quieres darnos tu opinión de nuevo."
        ),
        "no_survey": "No hay ninguna encuesta abierta. Envía 'empezar' para darnos tu opinión.",
        "late_comment": "Gracias, lo hemos añadido a tu opinión.",
        "truncated": "(Tu mensaje era largo: hemos guardado los primeros {limit} caracteres.)",
        "resume": "¡Hola de nuevo! Sigamos donde lo dejamos.",
        "undelivered": "Perdona, mi último mensaje no te llegó. Aquí lo tienes de nuevo:",
        "thanks": "¡Gracias por tu opinión!",
        "unsupported": "Lo siento, aquí solo puedo leer mensajes de texto y botones.",
        "yes": "Sí",
        "no": "No",
        "already_answered": "Ya respondiste: {label}",
        "closed": "Esta pregunta ya está cerrada; usa el último mensaje.",
        "bad_link": "Lo siento, ese enlace ya no es válido; esta es nuestra encuesta general.",
        "reminder": "Recordatorio: {question}",
        "expired": "Esta encuesta ya está cerrada. Gracias, hemos guardado tu comentario.",
        "confirm_score": "¿Quisiste decir {value} de {max}?",
        "confirm_declined": "De acuerdo, probemos otra vez.",
        "flood": (
            "Estás enviando mensajes más rápido de lo que puedo leerlos, así que haré una pausa. "
            "Espera un minuto y luego continúa."
        ),
    },
    # The command words ('skip', 'stop', 'start') are the English ones: they work in any
    # language, and German ones would belong in bot/parsing.py's table first.
    "de": {
        "hint_empty": "Bitte geben Sie eine Antwort ein.",
        "hint_not_a_number": "Bitte antworten Sie mit einer Zahl von {min} bis {max}.",
        "hint_out_of_range": (
            "Das liegt außerhalb der Skala: Bitte wählen Sie eine Zahl von {min} bis {max}."
        ),
        "hint_ambiguous": "Bitte geben Sie nur eine ganze Zahl von {min} bis {max} an.",
        "hint_unknown_choice": (
            "Bitte wählen Sie eine der Optionen (Sie können ihre Nummer eingeben)."
        ),
        "hint_not_yes_no": "Bitte antworten Sie mit Ja oder Nein.",
        "hint_stale_button": (
            "Diese Schaltfläche gehört zu einer früheren Frage. Hier ist die aktuelle:"
        ),
        "hint_required": "Diese Frage braucht eine Antwort, damit es weitergeht.",
        "hint_skip": "Mit 'skip' können Sie diese Frage auslassen.",
        "help": (
            "Ich sammle Ihr Feedback. Beantworten Sie jede Frage per Text oder mit den "
            "Schaltflächen. Mit 'skip' lassen Sie eine optionale Frage aus, mit 'stop' erhalten "
            "Sie keine Umfragen mehr."
        ),
        "opted_out": (
            "Erledigt: Sie erhalten keine Umfragen mehr von uns. "
            "Wenn Sie es sich anders überlegen, senden Sie 'start'."
        ),
        "still_opted_out": (
            "Sie haben sich von unseren Umfragen abgemeldet, daher frage ich Sie nichts. "
            "Senden Sie 'start', wenn Sie wieder Feedback geben möchten."
        ),
        "no_survey": (
            "Gerade ist keine Umfrage offen. Senden Sie 'start', um uns Feedback zu geben."
        ),
        "late_comment": "Danke, wir haben das zu Ihrem Feedback hinzugefügt.",
        "truncated": (
            "(Ihre Nachricht war lang, daher haben wir die ersten {limit} Zeichen behalten.)"
        ),
        "resume": "Willkommen zurück! Machen wir dort weiter, wo wir aufgehört haben.",
        "undelivered": (
            "Entschuldigung, meine letzte Nachricht hat Sie nicht erreicht. Hier noch einmal:"
        ),
        "thanks": "Vielen Dank für Ihr Feedback!",
        "unsupported": "Entschuldigung, ich kann hier nur Textnachrichten und Schaltflächen lesen.",
        "yes": "Ja",
        "no": "Nein",
        "already_answered": "Bereits beantwortet: {label}",
        "closed": "Diese Frage ist geschlossen; bitte nutzen Sie die neueste Nachricht.",
        "bad_link": (
            "Entschuldigung, dieser Link ist nicht mehr gültig; hier ist unsere allgemeine Umfrage."
        ),
        "reminder": "Erinnerung: {question}",
        "expired": "Diese Umfrage ist geschlossen. Danke, wir haben Ihre Notiz behalten.",
        "confirm_score": "Meinten Sie {value} von {max}?",
        "confirm_declined": "Gut, versuchen wir es noch einmal.",
        "flood": (
            "Sie senden Nachrichten schneller, als ich sie lesen kann, daher mache ich kurz "
            "Pause. Bitte warten Sie eine Minute und machen Sie dann weiter."
        ),
    },
}


def has_bot_texts(locale: str) -> bool:
    """Whether the bot's own words exist in `locale`'s language (else English is used)."""
    return _language(locale) in TEXTS


def bot_text(key: str, locale: str, **values: object) -> str:
    """The bot's text `key` in `locale` (falling back to English), with `values` filled in."""
    table = TEXTS.get(_language(locale), TEXTS["en"])
    return table.get(key, TEXTS["en"][key]).format(**values)


def _language(locale: str) -> str:
    return locale.replace("_", "-").split("-")[0].lower()
