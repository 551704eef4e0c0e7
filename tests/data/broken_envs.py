import gymnasium as gym
import numpy as np


class Base(gym.Env):
    observation_space, action_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32), gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(1, np.float32), 1.0, self.t >= 5, False, {}


class ShapeShift(Base):
    def step(self, action):
        obs, *rest = super().step(action)
        return (np.zeros(2, np.float32) if self.t == 3 else obs), *rest


class StringObs(Base):
    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return "abc", {}


class ArrayReward(Base):
    def step(self, action):
        obs, reward, *rest = super().step(action)
        return obs, np.array([reward, reward]), *rest


class BareReset(Base):
    def reset(self, seed=None, options=None):
        return super().reset(seed=seed)[0]


class FourValues(Base):
    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated, info


class OutOfRange(Base):
    observation_space = gym.spaces.Discrete(3)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        _, *rest = super().step(action)
        return (7 if self.t == 2 else 1), *rest


for name in ("ShapeShift", "StringObs", "ArrayReward", "BareReset", "FourValues", "OutOfRange"):
    gym.register(f"{name}-v0", entry_point=globals()[name], max_episode_steps=50)
