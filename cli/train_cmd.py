"""`train`: SGD on both engines in lockstep, a table per epoch."""

import argparse
import json
import sys

import numpy as np

from cli.common import (
    EXIT_DISAGREE,
    EXIT_OK,
    MAX_EPOCHS,
    add_data_options,
    add_network_options,
    dataset,
    fail,
    network,
    rate,
    whole,
)
from engine.budget import check_train
from engine.check.mistakes import MISTAKES, inject
from engine.errors import UserInputError, printable
from engine.files.model_file import write_model
from engine.train.lockstep import Lockstep, TrainConfig
from engine.train.run import train


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train", help="run SGD on both engines in lockstep",
        description="SGD, batch size 1, on the scratch engine and torch from the same start, "
                    "each with its own gradients; a row per epoch: each engine's mean loss "
                    "(before each update), the largest gradient difference, and the parameter "
                    "drift ||θ_scratch - θ_torch||.")
    add_network_options(parser, layout=False)
    add_data_options(parser)
    parser.add_argument("--epochs", type=whole(1, MAX_EPOCHS), default=5,
                        help=f"passes over the data, 1 to {MAX_EPOCHS:,} (default 5)")
    parser.add_argument("--lr", type=rate(positive=True), default=0.1,
                        help="learning rate, above 0 (default 0.1)")
    parser.add_argument("--shuffle", action="store_true",
                        help="shuffle the samples each epoch (seeded by --seed)")
    parser.add_argument("--save-model", metavar="FILE",
                        help="write the scratch engine's final parameters as a model file")
    parser.add_argument("--inject", metavar="NAME",
                        help="the scratch engine makes a classic mistake (torch never does): "
                             f"{', '.join(MISTAKES)}; NAME@L makes it in layer L only")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = TrainConfig(lr=args.lr, epochs=args.epochs, shuffle=args.shuffle,
                             seed=args.seed)
        spec, params = network(args)
        mistake = inject(spec, args.inject) if args.inject else None
        if not args.data:   # counted before the samples are made: they take memory too
            check_train(spec, args.samples, args.epochs * args.samples, bool(args.save_model))
        data = dataset(args, spec)
        check_train(spec, len(data), args.epochs * len(data), bool(args.save_model))
    except UserInputError as e:
        return fail(str(e))
    lockstep = Lockstep(spec, params, data, mistake=mistake)
    history = {"loss_scratch": [], "loss_torch": [], "max_grad_diff": [], "param_drift": []}
    epoch_losses: list[tuple[float, float]] = []
    worst = 0.0
    steps = 0
    diverged = None
    if not args.json:
        print(f"{spec.describe()}; {len(data)} samples, lr {args.lr}")
        if mistake is not None:
            print(f"the scratch engine makes a mistake on purpose (torch does not): "
                  f"{mistake.describe()}")
        # flushed: a long run shows at once that it has started
        print(f"{'epoch':>5} {'loss scratch':>14} {'loss torch':>14} {'max |grad diff|':>16} "
              f"{'param drift':>12}", flush=True)
    for record in train(spec, params, data, config, lockstep):
        steps = record.step
        if not record.finite:
            diverged = record
            break
        epoch_losses.append((record.loss_scratch, record.loss_torch))
        worst = max(worst, record.max_grad_diff)
        if record.epoch_end:
            losses = np.mean(epoch_losses, axis=0)
            row = (float(losses[0]), float(losses[1]), worst, record.drift)
            for key, value in zip(history, row, strict=True):
                history[key].append(value)
            if not args.json:
                print(f"{record.epoch:>5} {row[0]:>14.8g} {row[1]:>14.8g} {row[2]:>16.3g} "
                      f"{row[3]:>12.3g}", flush=True)
            epoch_losses, worst = [], 0.0
    if args.json:
        injected = {"mistake": mistake.label} if mistake is not None else {}
        print(json.dumps({"epochs": len(history["loss_scratch"]), "steps": steps, **history,
                          **injected}))
    if diverged is not None:
        print(f"train: diverged at step {diverged.step} (epoch {diverged.epoch}, sample "
              f"{diverged.samples[0] + 1}): the loss is {diverged.loss_scratch:g} (scratch) and "
              f"{diverged.loss_torch:g} (torch) with learning rate {args.lr:g}; try a smaller "
              f"one, such as {args.lr / 10:g}", file=sys.stderr)
        if args.save_model:
            print(f"train: {printable(args.save_model)} not written: the parameters are not "
                  "finite", file=sys.stderr)
        return EXIT_DISAGREE
    if args.save_model:
        try:
            write_model(args.save_model, spec, lockstep.scratch.params)
        except OSError as e:
            return fail(f"{args.save_model}: cannot write it ({e.strerror or e})")
        if not args.json:
            print(f"wrote {printable(args.save_model)}")
    return EXIT_OK
