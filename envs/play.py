"""Playing single episodes to watch them: on screen, or as an animated GIF."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
from PIL import Image

from agents import ReinforceAgent

# pygame must not look for a display when rendering to arrays (servers, CI).
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


@dataclass
class Episode:
    total_reward: float = 0.0
    length: int = 0
    frames: list[np.ndarray] = field(default_factory=list)


def play_episode(agent: ReinforceAgent, env: gym.Env, seed: int | None = None, deterministic: bool = True) -> Episode:
    """One episode with ``agent`` acting; frames are kept when ``env`` renders ``rgb_array``."""
    keep_frames = env.render_mode == "rgb_array"
    episode = Episode()
    observation, _ = env.reset(seed=seed)
    if keep_frames:
        episode.frames.append(env.render())
    done = False
    while not done:
        observation, reward, terminated, truncated, _ = env.step(agent.act(observation, deterministic))
        episode.total_reward += float(reward)
        episode.length += 1
        done = terminated or truncated
        if keep_frames:
            episode.frames.append(env.render())
    return episode


def encode_gif(frames: list[np.ndarray], fps: float, scale: float = 0.5) -> tuple[bytes, int, int]:
    """Frames as an animated GIF (Pillow), shrunk by ``scale``; returns the bytes, height and width."""
    height, width = frames[0].shape[:2]
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    images = [Image.fromarray(frame).resize(size) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return buffer.getvalue(), size[1], size[0]


def display_available() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
