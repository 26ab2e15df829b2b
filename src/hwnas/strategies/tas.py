"""TAS as a study strategy: the ``resnet`` space's widths and depths under a FLOPs target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hwnas.errors import ConfigError
from hwnas.strategies.differentiable import GradientStrategy


class TASStrategy(GradientStrategy):
    """TAS (Dong & Yang, NeurIPS 2019): learnable widths and depths of the ``resnet`` space under
    a FLOPs target (options: :class:`hwnas.oneshot.relax.tas.TASConfig` keys but ``seed``, which
    comes from the study). Its derived networks are evaluated by the config's evaluators (e.g.
    ``train``); distillation from the unpruned network is
    :func:`hwnas.oneshot.relax.tas_distill.distill`."""

    method = "tas"
    spaces = ("resnet",)

    def make_settings(self, options: dict[str, Any]) -> Any:
        from hwnas.oneshot.relax.tas import TASConfig

        if "seed" in options:
            raise ConfigError("tas: the seed comes from the study's seed; remove the seed option")
        return TASConfig.from_dict(options)

    def check_space(self) -> None:
        """The ``resnet`` space is all TAS needs (checked in :meth:`on_setup`)."""

    def check_compute(self) -> None:
        """TAS trains on the CPU (it has no ``compute_device`` option)."""

    def search(self, folder: Path | None) -> Any:
        import dataclasses

        from hwnas.oneshot.relax.tas import tas_search

        def report(epoch: Any) -> None:
            if self.progress is not None:
                self.progress(
                    {
                        "label": f"flops_ratio={self.settings.target_flops_ratio:g}",
                        "epoch": epoch.epoch,
                        "epochs": epoch.epochs,
                        "loss": epoch.train_loss,
                        "accuracy": epoch.train_acc,
                        "expected_cost": float("nan"),
                    }
                )

        config = dataclasses.replace(self.settings, seed=self.seed)
        space = self.problem.space  # on_setup checked: resnet
        run_folder = None if folder is None else folder / "run-0"
        return tas_search(
            space,  # type: ignore[arg-type]
            self._dataset,
            config,
            folder=run_folder,
            progress=report,
        )
