"""The airline tools: tau-bench's interface and behaviour over a copy-on-write state.

Names, parameter schemas and descriptions are tau-bench's, so an agent sees the same
interface. Results are the exact text tau-bench returns: ``json.dumps`` of records with
its default formatting, and errors starting with ``Error: ``. Where tau-bench has a
quirk that recorded conversations depend on (a misleading error text, a cabin that is
never updated, an unpadded date) it is kept, with a comment, so replays reproduce them.

A tool either fails before changing anything or changes the state and succeeds, as in
tau-bench; arguments are copied before being stored so the state never shares objects
with the calls that produced it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache, partial
from typing import Any

from ...tools import Tool
from ._calc import calculate
from ._state import AirlineState

_NEW_RESERVATION_IDS = ("HATHAT", "HATHAU", "HATHAV")
_CERTIFICATE_IDS = ("certificate_3221322", "certificate_3221323", "certificate_3221324")
_BOOKING_TIME = "2024-05-15T15:00:00"
_INSURANCE_PER_PASSENGER = 30
_NONFREE_BAG_PRICE = 50

_AIRPORTS = {
    "SFO": "San Francisco",
    "JFK": "New York",
    "LAX": "Los Angeles",
    "ORD": "Chicago",
    "DFW": "Dallas",
    "DEN": "Denver",
    "SEA": "Seattle",
    "ATL": "Atlanta",
    "MIA": "Miami",
    "BOS": "Boston",
    "PHX": "Phoenix",
    "IAH": "Houston",
    "LAS": "Las Vegas",
    "MCO": "Orlando",
    "EWR": "Newark",
    "CLT": "Charlotte",
    "MSP": "Minneapolis",
    "DTW": "Detroit",
    "PHL": "Philadelphia",
    "LGA": "LaGuardia",
}


# --- reading -----------------------------------------------------------------------------


def _get_user_details(db: AirlineState, user_id: str) -> str:
    if user_id not in db.users:
        return "Error: user not found"
    return json.dumps(db.users[user_id])


def _get_reservation_details(db: AirlineState, reservation_id: str) -> str:
    if reservation_id not in db.reservations:
        # tau-bench says "user", not "reservation", here; recorded conversations show it.
        return "Error: user not found"
    return json.dumps(db.reservations[reservation_id])


def _list_all_airports(db: AirlineState) -> str:
    return json.dumps(_AIRPORTS)


def _on_date(flight: dict[str, Any], day: dict[str, Any]) -> dict[str, Any]:
    # A search result: the flight without its calendar, plus that date's status, seats
    # and prices.
    row = {k: v for k, v in flight.items() if k != "dates"}
    row.update(day)
    return row


def _search_direct_flight(db: AirlineState, origin: str, destination: str, date: str) -> str:
    found = []
    for flight in db.flights.values():
        if flight["origin"] != origin or flight["destination"] != destination:
            continue
        day = flight["dates"].get(date)
        if day is not None and day["status"] == "available":
            found.append(_on_date(flight, day))
    return json.dumps(found)


def _search_onestop_flight(db: AirlineState, origin: str, destination: str, date: str) -> str:
    found = []
    for first in db.flights.values():
        if first["origin"] != origin:
            continue
        for second in db.flights.values():
            if second["destination"] != destination or second["origin"] != first["destination"]:
                continue
            arrival = first["scheduled_arrival_time_est"]
            # An overnight first leg ("...+1") connects the next day. tau-bench writes that
            # day without zero padding ("2024-05-6"), so such connections exist only from
            # the 9th on, and compares the times as strings: both kept.
            second_date = f"2024-05-{int(date[-2:]) + 1}" if "+1" in arrival else date
            if arrival > second["scheduled_departure_time_est"]:
                continue
            if date not in first["dates"] or second_date not in second["dates"]:
                continue
            if (
                first["dates"][date]["status"] != "available"
                or second["dates"][second_date]["status"] != "available"
            ):
                continue
            leg1 = _on_date(first, first["dates"][date])
            leg1["date"] = date
            # tau-bench shows the second leg's status, seats and prices on the first leg's
            # date even when it flies the next day.
            leg2 = _on_date(second, second["dates"][date])
            leg2["date"] = second_date
            found.append([leg1, leg2])
    return json.dumps(found)


def _calculate(db: AirlineState, expression: str) -> str:
    return calculate(expression)


def _think(db: AirlineState, thought: str) -> str:
    return ""


def _transfer_to_human_agents(db: AirlineState, summary: str) -> str:
    return "Transfer successful"


# --- writing -----------------------------------------------------------------------------


def _price_legs(
    db: AirlineState, legs: list[dict[str, Any]], cabin: str, seats: int
) -> tuple[int | float, str | None]:
    """Fill in each new leg's price and airports; the total for ``seats``, or an error."""
    total: int | float = 0
    for leg in legs:
        number = leg["flight_number"]
        if number not in db.flights:
            return 0, f"Error: flight {number} not found"
        flight = db.flights[number]
        if leg["date"] not in flight["dates"]:
            return 0, f"Error: flight {number} not found on date {leg['date']}"
        day = flight["dates"][leg["date"]]
        if day["status"] != "available":
            return 0, f"Error: flight {number} not available on date {leg['date']}"
        if day["available_seats"][cabin] < seats:
            return 0, f"Error: not enough seats on flight {number}"
        leg["price"] = day["prices"][cabin]
        leg["origin"] = flight["origin"]
        leg["destination"] = flight["destination"]
        total += leg["price"] * seats
    return total, None


def _book_reservation(
    db: AirlineState,
    user_id: str,
    origin: str,
    destination: str,
    flight_type: str,
    cabin: str,
    flights: list[dict[str, Any]],
    passengers: list[dict[str, Any]],
    payment_methods: list[dict[str, Any]],
    total_baggages: int,
    nonfree_baggages: int,
    insurance: str,
) -> str:
    if user_id not in db.users:
        return "Error: user not found"
    wallet = db.users[user_id]["payment_methods"]
    # Fixed ids, as in tau-bench, so a booking's id is predictable from the task; a
    # fourth booking in one conversation replaces the third.
    reservation_id = next(
        (r for r in _NEW_RESERVATION_IDS if r not in db.reservations), _NEW_RESERVATION_IDS[-1]
    )
    legs = copy.deepcopy(flights)
    total, error = _price_legs(db, legs, cabin, len(passengers))
    if error is not None:
        return error
    if insurance == "yes":
        total += _INSURANCE_PER_PASSENGER * len(passengers)
    total += _NONFREE_BAG_PRICE * nonfree_baggages
    for payment in payment_methods:
        payment_id, amount = payment["payment_id"], payment["amount"]
        if payment_id not in wallet:
            return f"Error: payment method {payment_id} not found"
        if wallet[payment_id]["source"] in ("gift_card", "certificate"):
            if wallet[payment_id]["amount"] < amount:
                return f"Error: not enough balance in payment method {payment_id}"
    paid = sum(payment["amount"] for payment in payment_methods)
    if paid != total:
        return f"Error: payment amount does not add up, total price is {total}, but paid {paid}"

    user = db.users.edit(user_id)
    for payment in payment_methods:
        payment_id = payment["payment_id"]
        method = user["payment_methods"][payment_id]
        if method["source"] == "gift_card":
            method["amount"] -= payment["amount"]
        elif method["source"] == "certificate":
            # A certificate is used up whole, whatever the amount taken from it.
            del user["payment_methods"][payment_id]
    reservation = {
        "reservation_id": reservation_id,
        "user_id": user_id,
        "origin": origin,
        "destination": destination,
        "flight_type": flight_type,
        "cabin": cabin,
        "flights": legs,
        "passengers": copy.deepcopy(passengers),
        "payment_history": copy.deepcopy(payment_methods),
        "created_at": _BOOKING_TIME,
        "total_baggages": total_baggages,
        "nonfree_baggages": nonfree_baggages,
        "insurance": insurance,
    }
    db.reservations.put(reservation_id, reservation)
    user["reservations"].append(reservation_id)
    return json.dumps(reservation)


def _cancel_reservation(db: AirlineState, reservation_id: str) -> str:
    if reservation_id not in db.reservations:
        return "Error: reservation not found"
    history = db.reservations[reservation_id]["payment_history"]
    refunds = [{"payment_id": p["payment_id"], "amount": -p["amount"]} for p in history]
    reservation = db.reservations.edit(reservation_id)
    # Refunds are recorded on the reservation only: balances are not restored.
    reservation["payment_history"].extend(refunds)
    reservation["status"] = "cancelled"
    return json.dumps(reservation)


def _charge_check(method: dict[str, Any], amount: int | float) -> str | None:
    """Why ``method`` cannot pay ``amount`` for a change to a reservation, if it cannot."""
    if method["source"] == "certificate":
        return "Error: certificate cannot be used to update reservation"
    if method["source"] == "gift_card" and method["amount"] < amount:
        return "Error: gift card balance is not enough"
    return None


def _charge(
    db: AirlineState, reservation: dict[str, Any], payment_id: str, amount: int | float
) -> None:
    user = db.users.edit(reservation["user_id"])
    method = user["payment_methods"][payment_id]
    if method["source"] == "gift_card":
        method["amount"] -= amount
    if amount != 0:
        reservation["payment_history"].append({"payment_id": payment_id, "amount": amount})


def _update_reservation_baggages(
    db: AirlineState,
    reservation_id: str,
    total_baggages: int,
    nonfree_baggages: int,
    payment_id: str,
) -> str:
    if reservation_id not in db.reservations:
        return "Error: reservation not found"
    current = db.reservations[reservation_id]
    price = _NONFREE_BAG_PRICE * max(0, nonfree_baggages - current["nonfree_baggages"])
    wallet = db.users[current["user_id"]]["payment_methods"]
    if payment_id not in wallet:
        return "Error: payment method not found"
    error = _charge_check(wallet[payment_id], price)
    if error is not None:
        return error
    reservation = db.reservations.edit(reservation_id)
    reservation["total_baggages"] = total_baggages
    reservation["nonfree_baggages"] = nonfree_baggages
    _charge(db, reservation, payment_id, price)
    return json.dumps(reservation)


def _update_reservation_flights(
    db: AirlineState,
    reservation_id: str,
    cabin: str,
    flights: list[dict[str, Any]],
    payment_id: str,
) -> str:
    if reservation_id not in db.reservations:
        return "Error: reservation not found"
    current = db.reservations[reservation_id]
    seats = len(current["passengers"])
    legs = copy.deepcopy(flights)
    total: int | float = 0
    for leg in legs:
        # A leg already booked in the same cabin keeps its price; anything else is
        # priced now, and must be available, like a new booking.
        kept = [
            f
            for f in current["flights"]
            if f["flight_number"] == leg["flight_number"]
            and f["date"] == leg["date"]
            and cabin == current["cabin"]
        ]
        if kept:
            leg["price"] = kept[0]["price"]
            leg["origin"] = kept[0]["origin"]
            leg["destination"] = kept[0]["destination"]
            total += kept[0]["price"] * seats
            continue
        price, error = _price_legs(db, [leg], cabin, seats)
        if error is not None:
            return error
        total += price
    total -= sum(f["price"] for f in current["flights"]) * seats
    wallet = db.users[current["user_id"]]["payment_methods"]
    if payment_id not in wallet:
        return "Error: payment method not found"
    error = _charge_check(wallet[payment_id], total)
    if error is not None:
        return error
    reservation = db.reservations.edit(reservation_id)
    # tau-bench leaves the reservation's cabin as it was, even when the new flights are
    # priced in another cabin, and does not update seat counts.
    reservation["flights"] = legs
    _charge(db, reservation, payment_id, total)
    return json.dumps(reservation)


def _update_reservation_passengers(
    db: AirlineState, reservation_id: str, passengers: list[dict[str, Any]]
) -> str:
    if reservation_id not in db.reservations:
        return "Error: reservation not found"
    if len(passengers) != len(db.reservations[reservation_id]["passengers"]):
        return "Error: number of passengers does not match"
    reservation = db.reservations.edit(reservation_id)
    reservation["passengers"] = copy.deepcopy(passengers)
    return json.dumps(reservation)


def _send_certificate(db: AirlineState, user_id: str, amount: int | float) -> str:
    if user_id not in db.users:
        return "Error: user not found"
    for payment_id in _CERTIFICATE_IDS:
        if payment_id not in db.users[user_id]["payment_methods"]:
            wallet = db.users.edit(user_id)["payment_methods"]
            wallet[payment_id] = {"source": "certificate", "amount": amount, "id": payment_id}
            return f"Certificate {payment_id} added to user {user_id} with amount {amount}."
    # tau-bench has no answer here (its episode crashes); say what happened instead.
    return f"Error: user {user_id} already holds every certificate id this tool can issue"


# --- schemas -----------------------------------------------------------------------------


def _string(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


def _params(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


_CABIN = {"type": "string", "enum": ["basic_economy", "economy", "business"]}
_RESERVATION_ID = _string("The reservation ID, such as 'ZFA04Y'.")
_PAYMENT_ID = _string(
    "The payment id stored in user profile, such as 'credit_card_7815826', "
    "'gift_card_7815826', 'certificate_7815826'."
)
_FLIGHT_LEG = _params(
    {
        "flight_number": _string("Flight number, such as 'HAT001'."),
        "date": _string(
            "The date for the flight in the format 'YYYY-MM-DD', such as '2024-05-01'."
        ),
    }
)
_PASSENGERS = {
    "type": "array",
    "description": "An array of objects containing details about each passenger.",
    "items": _params(
        {
            "first_name": _string("The first name of the passenger, such as 'Noah'."),
            "last_name": _string("The last name of the passenger, such as 'Brown'."),
            "dob": _string(
                "The date of birth of the passenger in the format 'YYYY-MM-DD', "
                "such as '1990-01-01'."
            ),
        }
    ),
}


def _search_params(date_example: str) -> dict[str, Any]:
    return _params(
        {
            "origin": _string("The origin city airport in three letters, such as 'JFK'."),
            "destination": _string("The destination city airport in three letters, such as 'LAX'."),
            "date": _string(
                f"The date of the flight in the format 'YYYY-MM-DD', such as '{date_example}'."
            ),
        }
    )


_BOOK_PARAMS = _params(
    {
        "user_id": _string("The ID of the user to book the reservation, such as 'sara_doe_496'."),
        "origin": _string("The IATA code for the origin city, such as 'SFO'."),
        "destination": _string("The IATA code for the destination city, such as 'JFK'."),
        "flight_type": {"type": "string", "enum": ["one_way", "round_trip"]},
        "cabin": _CABIN,
        "flights": {
            "type": "array",
            "description": "An array of objects containing details about each piece of flight.",
            "items": _FLIGHT_LEG,
        },
        "passengers": _PASSENGERS,
        "payment_methods": {
            "type": "array",
            "description": "An array of objects containing details about each payment method.",
            "items": _params(
                {
                    "payment_id": _PAYMENT_ID,
                    "amount": {"type": "number", "description": "The amount to be paid."},
                }
            ),
        },
        "total_baggages": {
            "type": "integer",
            "description": "The total number of baggage items included in the reservation.",
        },
        "nonfree_baggages": {
            "type": "integer",
            "description": "The number of non-free baggage items included in the reservation.",
        },
        "insurance": {"type": "string", "enum": ["yes", "no"]},
    }
)

_ToolImpl = Callable[..., str]

# (name, description, parameters, implementation, terminal), in tau-bench's order.
_SPECS: list[tuple[str, str, dict[str, Any], _ToolImpl, bool]] = [
    ("book_reservation", "Book a reservation.", _BOOK_PARAMS, _book_reservation, False),
    (
        "calculate",
        "Calculate the result of a mathematical expression.",
        _params(
            {
                "expression": _string(
                    "The mathematical expression to calculate, such as '2 + 2'. The "
                    "expression can contain numbers, operators (+, -, *, /), parentheses, "
                    "and spaces."
                )
            }
        ),
        _calculate,
        False,
    ),
    (
        "cancel_reservation",
        "Cancel the whole reservation.",
        _params({"reservation_id": _RESERVATION_ID}),
        _cancel_reservation,
        False,
    ),
    (
        "get_reservation_details",
        "Get the details of a reservation.",
        _params({"reservation_id": _string("The reservation id, such as '8JX2WO'.")}),
        _get_reservation_details,
        False,
    ),
    (
        "get_user_details",
        "Get the details of an user, including their reservations.",
        _params({"user_id": _string("The user id, such as 'sara_doe_496'.")}),
        _get_user_details,
        False,
    ),
    (
        "list_all_airports",
        "List all airports and their cities.",
        _params({}),
        _list_all_airports,
        False,
    ),
    (
        "search_direct_flight",
        "Search direct flights between two cities on a specific date.",
        _search_params("2024-01-01"),
        _search_direct_flight,
        False,
    ),
    (
        # tau-bench describes the one-stop search with the direct search's text; agents
        # were evaluated with it, so it is kept.
        "search_onestop_flight",
        "Search direct flights between two cities on a specific date.",
        _search_params("2024-05-01"),
        _search_onestop_flight,
        False,
    ),
    (
        "send_certificate",
        "Send a certificate to a user. Be careful!",
        _params(
            {
                "user_id": _string(
                    "The ID of the user to book the reservation, such as 'sara_doe_496'."
                ),
                "amount": {"type": "number", "description": "Certificate amount to send."},
            }
        ),
        _send_certificate,
        False,
    ),
    (
        "think",
        "Use the tool to think about something. It will not obtain new information or "
        "change the database, but just append the thought to the log. Use it when complex "
        "reasoning is needed.",
        _params({"thought": _string("A thought to think about.")}),
        _think,
        False,
    ),
    (
        "transfer_to_human_agents",
        "Transfer the user to a human agent, with a summary of the user's issue. Only "
        "transfer if the user explicitly asks for a human agent, or if the user's issue "
        "cannot be resolved by the agent with the available tools.",
        _params({"summary": _string("A summary of the user's issue.")}),
        _transfer_to_human_agents,
        True,
    ),
    (
        "update_reservation_baggages",
        "Update the baggage information of a reservation.",
        _params(
            {
                "reservation_id": _RESERVATION_ID,
                "total_baggages": {
                    "type": "integer",
                    "description": "The updated total number of baggage items included in "
                    "the reservation.",
                },
                "nonfree_baggages": {
                    "type": "integer",
                    "description": "The updated number of non-free baggage items included "
                    "in the reservation.",
                },
                "payment_id": _PAYMENT_ID,
            }
        ),
        _update_reservation_baggages,
        False,
    ),
    (
        "update_reservation_flights",
        "Update the flight information of a reservation.",
        _params(
            {
                "reservation_id": _RESERVATION_ID,
                "cabin": _CABIN,
                "flights": {
                    "type": "array",
                    "description": "An array of objects containing details about each piece "
                    "of flight in the ENTIRE new reservation. Even if the a flight segment is "
                    "not changed, it should still be included in the array.",
                    "items": _FLIGHT_LEG,
                },
                "payment_id": _PAYMENT_ID,
            }
        ),
        _update_reservation_flights,
        False,
    ),
    (
        "update_reservation_passengers",
        "Update the passenger information of a reservation.",
        _params({"reservation_id": _RESERVATION_ID, "passengers": _PASSENGERS}),
        _update_reservation_passengers,
        False,
    ),
]

TOOL_NAMES = tuple(spec[0] for spec in _SPECS)
"""Every airline tool name, in tau-bench's order."""


@cache
def _templates() -> tuple[Tool, ...]:
    # Checking the schemas and compiling their validators takes about 15 ms, far more than
    # a fresh environment otherwise costs: do it once per process. Bound copies share the
    # schemas and validators, which are never modified.
    def unbound(**_: Any) -> str:
        raise RuntimeError("template tool called")

    return tuple(
        Tool(
            name=name,
            description=description,
            parameters=parameters,
            fn=unbound,
            terminal=terminal,
        )
        for name, description, parameters, _, terminal in _SPECS
    )


def build_tools(db: AirlineState) -> list[Tool]:
    """The airline tools, bound to ``db``."""
    tools = []
    for template, (_, _, _, impl, _) in zip(_templates(), _SPECS, strict=True):
        bound = copy.copy(template)
        bound.fn = partial(impl, db)
        tools.append(bound)
    return tools
