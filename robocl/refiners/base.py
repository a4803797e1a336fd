"""The action-refiner interface: corrects a planned action before it is executed."""

from __future__ import annotations

from torch import Tensor


class Refiner:
    """Identity refiner; subclasses (AFM) transport the planned action to a corrected one.

    `observe` receives what happened after executing an action so a refiner can infer the
    current dynamics regime in context (no gradient steps at run time).
    """

    name = "identity"

    @property
    def settled(self) -> bool:
        """Whether the refined robot behaves steadily now (a learner of it learns only then): always, here."""
        return True

    def reset(self) -> None:
        """New episode: forget the regime context."""

    def refine(self, state: Tensor, planned_action: Tensor) -> Tensor:
        return planned_action

    def observe(
        self,
        state: Tensor,
        planned_action: Tensor,
        executed_action: Tensor,
        next_state: Tensor,
        predicted_next_state: Tensor,
    ) -> None:
        """The realized transition; `predicted_next_state` is the nominal model's prediction."""


IdentityRefiner = Refiner


def identity_from_config(node: object, **context: object) -> Refiner:
    """Factory for `refiner=identity`."""
    return Refiner()
