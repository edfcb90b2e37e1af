"""The temporal model's network: a (bi)LSTM or GRU over a face track's per-frame
embeddings, one logit per track.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dfdc.core.config import SequenceConfig

__all__ = ["SequenceHead"]


class SequenceHead(nn.Module):
    """LayerNorm, then a (bi)LSTM/GRU over the packed sequence; the last hidden states and the
    mean of the outputs over the real steps feed one logit. Packing means padding never
    reaches the recurrence, so a padded step cannot change a track's output."""

    def __init__(self, in_dim: int, cfg: SequenceConfig) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.dirs = 2 if cfg.bidirectional else 1
        self.norm = nn.LayerNorm(in_dim)
        rnn = nn.LSTM if cfg.rnn == "lstm" else nn.GRU
        self.rnn = rnn(
            in_dim,
            cfg.hidden,
            num_layers=cfg.layers,
            batch_first=True,
            bidirectional=cfg.bidirectional,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(2 * self.dirs * cfg.hidden, 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(
            self.norm(x), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, h = self.rnn(packed)
        h = h[0] if isinstance(h, tuple) else h  # LSTM: (h_n, c_n)
        last = h[-self.dirs :].transpose(0, 1).reshape(x.shape[0], -1)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        steps = torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None]
        mean = (out * steps[..., None]).sum(1) / lengths.to(x.device)[:, None].clamp(min=1)
        return self.fc(self.drop(torch.cat([last, mean], dim=1)))

    def forward_full(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` of tracks with every step real (lengths all ``T``), without packing:
        the graph ONNX exports, since inference scores one whole track at a time."""
        out, h = self.rnn(self.norm(x))
        h = h[0] if isinstance(h, tuple) else h
        last = h[-self.dirs :].transpose(0, 1).reshape(x.shape[0], -1)
        return self.fc(self.drop(torch.cat([last, out.mean(1)], dim=1)))
