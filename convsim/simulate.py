"""Persona simulations: personas × trials against an agent, through the runner."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from ._llm import ModelClient
from .agents import Agent
from .errors import ConfigError
from .runner import RunConfig, RunSummary, WorkUnit, plan_units, run_units
from .session import SessionConfig, run_session
from .store import ConversationResult, SQLiteStore
from .tools import ToolEnvironment, Toolset
from .users import LLMUser, Persona, ScriptedUser, UserModel


def personas_hash(personas: Sequence[Persona]) -> str:
    """Content hash of a persona set, so a resumed run notices edited personas."""
    h = hashlib.sha256()
    for p in sorted(personas, key=lambda p: p.name):
        h.update(p.model_dump_json().encode())
    return h.hexdigest()[:16]


def make_user_factory(
    user: str, client_factory: Callable[[], ModelClient] | None = None
) -> Callable[[Persona], UserModel]:
    """``scripted`` plays each persona's scripted turns; anything else is a user model."""
    if user == "scripted":

        def scripted(persona: Persona) -> UserModel:
            if not persona.scripted_turns:
                raise ConfigError(
                    f"persona {persona.name!r} has no scripted_turns; add them or pass "
                    "--user MODEL to simulate the user with a model"
                )
            return ScriptedUser(persona.scripted_turns)

        return scripted
    if client_factory is None:
        from ._llm import LiteLLMClient

        shared: ModelClient = LiteLLMClient()
    else:
        shared = client_factory()

    def modelled(persona: Persona) -> UserModel:
        return LLMUser(persona, model=user, client=shared)

    return modelled


async def simulate(
    config: RunConfig,
    personas: Sequence[Persona],
    agent: Agent,
    *,
    store: SQLiteStore,
    user_factory: Callable[[Persona], UserModel],
    environment: Callable[[], ToolEnvironment] | None = None,
    resume: bool = False,
) -> RunSummary:
    """Run every persona ``config.trials`` times against ``agent`` and store the results.

    Each (persona, trial) gets a fresh tool environment, its own seed, and a result in
    the store, whatever happens in the conversation.
    """
    by_name = {p.name: p for p in personas}
    if len(by_name) != len(personas):
        raise ConfigError("persona names must be unique")
    for p in personas:
        user_factory(p)  # fail fast on configuration problems, before any conversation
    session_config = SessionConfig(
        max_turns=config.max_turns,
        call_timeout=config.call_timeout,
        conversation_timeout=config.conversation_timeout,
        self_checks=config.user != "scripted",
    )

    async def execute(unit: WorkUnit) -> ConversationResult:
        persona = by_name[unit.case_id]
        env = environment() if environment is not None else None
        session = await run_session(
            agent,
            user_factory(persona),
            conversation_id=f"{unit.case_id}#{unit.trial}",
            toolset=Toolset(env.tools()) if env is not None else None,
            config=session_config,
            persona=persona,
            case_id=unit.case_id,
            trial=unit.trial,
            seed=unit.seed,
            tags={**persona.tags, "persona": persona.name},
            # Expectations travel with the transcript, so grading needs only the run.
            metadata={"expectations": list(persona.expectations)} if persona.expectations else None,
        )
        session.conversation.metadata["termination"] = session.termination.value
        if env is not None:
            session.conversation.metadata["end_state_hash"] = env.state_hash()
        return ConversationResult(
            run_id=config.run_id,
            case_id=unit.case_id,
            trial=unit.trial,
            seed=unit.seed,
            termination=session.termination.value,
            error=session.error,
            conversation=session.conversation,
            duration_s=round(session.duration_s, 6),
            usage=session.usage,
        )

    units = plan_units(list(by_name), config.trials, config.seed)
    return await run_units(config, units, execute, store=store, resume=resume)
