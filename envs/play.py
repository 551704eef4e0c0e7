"""Playing single episodes to watch them: on screen, or as an animated GIF."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
from PIL import Image

from agents import CheckpointError, ReinforceAgent
from envs.config import EnvConfig
from envs.contract import environment_failed, first_line
from envs.factory import LONGEST_EPISODE, episode_too_long

# pygame must not look for a display when rendering to arrays (servers, CI).
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


# GIFs keep every other frame at half the width and height: an episode of 500 full CartPole frames
# would hold 360 MB of pixels before encoding.
FRAME_STRIDE = 2


def _shrink(frame: np.ndarray) -> np.ndarray:
    """Average ``FRAME_STRIDE`` x ``FRAME_STRIDE`` blocks (skipping pixels would lose thin lines)."""
    return np.asarray(Image.fromarray(frame).reduce(FRAME_STRIDE))


@dataclass
class Episode:
    """One played episode: what the agent saw, drew and got, its total, whether a time limit cut it, and frames
    if rendered."""

    observations: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)  # as drawn (not clipped or squashed), to learn from
    rewards: list[float] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)
    truncated: bool = False  # ended by a time limit, not by a terminal state: EpisodeBatch.from_episodes takes it
    # the observation the last step returned; for a truncated episode, the state the time limit cut it in, which
    # bootstrap="value" values (EpisodeBatch.from_episodes's final_observations)
    final_observation: np.ndarray | None = None
    # How far the body moved along x, where the environment reports info["x_position"] (MuJoCo's locomotion tasks):
    # a healthy reward can pay a walker that stands about as much as one that walks, and this tells them apart.
    x_travelled: float | None = None

    @property
    def total_reward(self) -> float:
        return float(sum(self.rewards))

    @property
    def length(self) -> int:
        return len(self.rewards)

    def transitions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(observations, actions, rewards)``, as ``EpisodeBatch.from_episodes`` takes them."""
        return np.array(self.observations), np.array(self.actions), np.array(self.rewards)


def _x_position(info: object) -> float | None:
    """``info["x_position"]`` where the environment reports it as a number (MuJoCo's locomotion tasks), else None."""
    try:
        return float(info["x_position"])
    except (TypeError, KeyError, ValueError, IndexError):
        return None


def play_episode(
    agent: ReinforceAgent,
    env: gym.Env,
    seed: int | None = None,
    deterministic: bool = True,
    max_episode_steps: int = LONGEST_EPISODE,
) -> Episode:
    """One episode of a single environment with ``agent`` acting; when ``env`` renders ``rgb_array``,
    every ``FRAME_STRIDE``-th frame is kept, shrunk by the same factor.

    :param agent: the agent that acts.
    :param env: one environment (not a vector one); its random stream continues unless ``seed`` is given.
    :param seed: reseeds the environment for this episode.
    :param deterministic: the most likely actions (default) instead of samples.
    :param max_episode_steps: the environment's time limit (or any bound of its episodes' lengths): a longer
        episode raises a one-line ``ValueError``, where one that never ends would play forever.
    """
    keep_frames = env.render_mode == "rgb_array"
    episode = Episode()
    try:
        observation, info = env.reset(seed=seed)
    except (Exception, SystemExit) as error:
        raise environment_failed("reset", error) from error
    start_x = _x_position(info)
    done = False
    while not done:
        if episode.length == max_episode_steps:
            raise episode_too_long(max_episode_steps)
        if keep_frames and episode.length % FRAME_STRIDE == 0:
            episode.frames.append(_shrink(env.render()))
        taken, drawn = agent.sample(observation, deterministic)
        try:
            next_observation, reward, terminated, truncated, info = env.step(taken)
        except (Exception, SystemExit) as error:
            raise environment_failed("step", error) from error
        episode.observations.append(observation)
        episode.actions.append(drawn)
        episode.rewards.append(float(reward))
        observation, done = next_observation, terminated or truncated
    episode.truncated = bool(truncated and not terminated)
    episode.final_observation = observation
    end_x = _x_position(info)
    if start_x is not None and end_x is not None:
        episode.x_travelled = end_x - start_x
    if keep_frames:
        episode.frames.append(_shrink(env.render()))
    return episode


def encode_gif(frames: list[np.ndarray], fps: float) -> tuple[bytes, int, int]:
    """Frames as an animated GIF (Pillow).

    Every frame is mapped onto one palette taken from the first: six times faster than Pillow's
    per-frame quantisation, and the same for scenes whose colours do not change.

    :param frames: at least one RGB frame, ``(height, width, 3)`` ``uint8`` arrays of one size.
    :param fps: frames per second of the animation.
    :return: the GIF's bytes, height and width.
    """
    images = [Image.fromarray(frame) for frame in frames]
    palette = images[0].quantize(colors=64, method=Image.Quantize.FASTOCTREE)
    images = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    height, width = frames[0].shape[:2]
    return buffer.getvalue(), height, width


def _episode_gif(episode: Episode, env: gym.Env) -> tuple[bytes, int, int]:
    """The kept frames of ``episode`` as a GIF at the environment's speed."""
    return encode_gif(episode.frames, env.metadata.get("render_fps", 30) / FRAME_STRIDE)


def display_available() -> bool:
    """Whether this process can open a window: an X11 or a Wayland display is set."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@contextlib.contextmanager
def _without_glfw_warnings() -> Iterator[None]:
    """GLFW (MuJoCo's default OpenGL) warns why it has no window, e.g. no display, and the rendering then fails:
    the caller reports that failure in its own line, so the warnings would only say it twice."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"glfw\Z")
        yield


def _drawable(made: gym.Env, env: EnvConfig) -> gym.Env:
    """``made`` if it can draw a frame here, else ``env`` not rendering, with one line saying why."""
    try:
        with _without_glfw_warnings():
            made.reset()
            made.render()
        return made
    except Exception as error:  # rendering is the environment's code (OpenGL): the episodes can still be played
        made.close()
        print(
            f"{env.name} cannot be drawn here ({type(error).__name__}: {first_line(error, None)}): its episodes are "
            "played, not shown (MuJoCo draws without a display under MUJOCO_GL=egl or osmesa)"
        )
        return env.make()


def _rendering(env: EnvConfig, render_mode: str) -> gym.Env:
    """The environment rendering in ``render_mode`` if it has that mode, else not rendering (an environment
    of one's own may draw nothing, and Gymnasium refuses a mode it does not list)."""
    made = env.make()
    if render_mode not in made.metadata.get("render_modes", []):
        return made
    made.close()
    return env.make(render_mode)


def record_gif(agent: ReinforceAgent, env: EnvConfig, seed: int) -> tuple[bytes, int, int]:
    """One greedy episode rendered headless, every other frame, as a GIF; a ``ValueError`` if the environment
    draws no frames.

    :param agent: the agent that acts.
    :param env: the environment, made here with render mode ``rgb_array`` and its time limit.
    :param seed: seeds the environment for the episode.
    :return: the GIF's bytes, height and width.
    """
    made = _rendering(env, "rgb_array")
    if made.render_mode != "rgb_array":
        made.close()
        raise ValueError(f"{env.name} has no rgb_array render mode")
    try:
        with _without_glfw_warnings():
            episode = play_episode(agent, made, seed=seed, max_episode_steps=env.time_limit())
    finally:
        made.close()
    return _episode_gif(episode, made)


def play(agent: ReinforceAgent, env: EnvConfig, episodes: int, seed: int, gif_dir: Path) -> None:
    """Play greedy episodes in a window when there is a display, else into GIFs (an environment that draws
    nothing is only played); print each episode's return and length against the time limit, and how far the
    body moved where the environment reports its ``x_position``.

    :param agent: the agent that acts; a ``CheckpointError`` if it was not built for the environment's spaces.
    :param env: the environment to play.
    :param episodes: how many episodes to play, one after the other.
    :param seed: seeds the first episode; episode N (from 1) is seeded ``seed + N - 1``.
    :param gif_dir: the existing folder where, without a display, episode N is written as ``watch_N.gif``.
    """
    render_mode = "human" if display_available() else "rgb_array"
    made = _rendering(env, render_mode)
    try:
        agent.check_fits(made.observation_space, made.action_space, env.name)
    except CheckpointError:
        made.close()
        raise
    limit = env.time_limit()
    if made.render_mode is None:
        print(f"{env.name} has no {render_mode} render mode: its episodes are played, not shown")
    else:
        made = _drawable(made, env)
    for index in range(episodes):
        episode = play_episode(agent, made, seed=seed + index, max_episode_steps=limit)
        moved = "" if episode.x_travelled is None else f", moved {episode.x_travelled:+.2f} m along x"
        print(f"episode {index + 1}: return {episode.total_reward:g} in {episode.length} steps (limit {limit}){moved}")
        if made.render_mode == "rgb_array":
            path = gif_dir / f"watch_{index + 1}.gif"
            path.write_bytes(_episode_gif(episode, made)[0])
            print(f"  no display: wrote {path}")
    made.close()
