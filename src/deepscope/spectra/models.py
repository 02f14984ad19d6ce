"""Registered networks for prepared spectra of shape ``(batch, 2, n_points)``.

Channel 0 is continuum-normalised flux minus one, channel 1 the coverage
mask. Classifiers return ``(batch, N_T_BINS + N_LUM)``: logits over the 70
whole subclasses O0 ... M9 of the temperature index, then luminosity-class
logits for I ... VI. Together they give the talk's code
``1000*A1 + 100*A2 + 2*A3 + 1.5`` (see :mod:`deepscope.spectra.mktype`);
predicting the two parts separately is what lets a partial type (no
subclass, or no luminosity class) still train the part it knows.
"""

import math

import torch
from torch import nn

from deepscope.registry import create_model, register_model
from deepscope.spectra.mktype import N_LUM, N_T_BINS

N_OUTPUTS = N_T_BINS + N_LUM


class SpectraANN(nn.Module):
    """Fully connected network on the flattened spectrum (the talk's ANN)."""

    def __init__(self, n_points=580, hidden=(256, 128), dropout=0.1):
        super().__init__()
        layers, width = [nn.Flatten()], 2 * n_points
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, N_OUTPUTS))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class SpectraEncoder(nn.Module):
    """1-D convolutions down to a fixed-length feature vector.

    Adaptive pooling to ``pooled`` positions keeps where a feature is (a
    line's wavelength matters) while making the head independent of the
    grid size.
    """

    def __init__(self, channels=(16, 32, 64), kernel=7, pooled=16, out_features=128):
        super().__init__()
        layers, width = [], 2
        for size in channels:
            layers += [nn.Conv1d(width, size, kernel, padding=kernel // 2), nn.BatchNorm1d(size),
                       nn.ReLU(), nn.MaxPool1d(2)]
            width = size
        layers += [nn.AdaptiveAvgPool1d(pooled), nn.Flatten(), nn.Linear(width * pooled, out_features)]
        self.net = nn.Sequential(*layers)
        self.out_features = out_features

    def forward(self, x):
        return self.net(x)


class SpectraCNN(nn.Module):
    """Convolutional classifier: encoder plus a small fully connected head."""

    def __init__(self, channels=(16, 32, 64), kernel=7, dropout=0.2):
        super().__init__()
        self.encoder = SpectraEncoder(channels, kernel)
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(self.encoder.out_features, N_OUTPUTS))

    def forward(self, x):
        return self.head(self.encoder(x))


class SpectraAutoencoder(nn.Module):
    """Convolutional encoder to a small code, fully connected decoder.

    ``forward`` returns the reconstructed channel 0 ``(batch, n_points)``;
    :meth:`encode` gives the code used by ``embed``, ``compress`` and the
    fine-tuned classifier.
    """

    def __init__(self, n_points=580, latent=16, channels=(16, 32, 64)):
        super().__init__()
        self.encoder = SpectraEncoder(channels, out_features=128)
        self.to_code = nn.Linear(128, latent)
        self.decoder = nn.Sequential(nn.Linear(latent, 256), nn.ReLU(), nn.Linear(256, n_points))

    def encode(self, x):
        return self.to_code(torch.relu(self.encoder(x)))

    def decode(self, code):
        return self.decoder(code)

    def forward(self, x):
        return self.decode(self.encode(x))


class SpectraAEClassifier(nn.Module):
    """The autoencoder's encoder with a classifier head, fine-tuned whole."""

    def __init__(self, n_points=580, latent=16, channels=(16, 32, 64), dropout=0.2):
        super().__init__()
        self.encoder = SpectraEncoder(channels, out_features=128)
        self.to_code = nn.Linear(128, latent)
        self.head = nn.Sequential(nn.Linear(latent, 64), nn.ReLU(), nn.Dropout(dropout), nn.Linear(64, N_OUTPUTS))

    def forward(self, x):
        return self.head(self.to_code(torch.relu(self.encoder(x))))


class SpectraEnsemble(nn.Module):
    """Classifiers trained apart, their probabilities averaged head by head.

    The output is each head's log mean probability: argmax, softmax and
    :func:`deepscope.spectra.decoding.t_index_from_logits` read it as they read
    one classifier's logits.
    """

    def __init__(self, members):
        super().__init__()
        self.members = nn.ModuleList(create_model(name, **kwargs) for name, kwargs in members)

    def forward(self, x):
        outputs = torch.stack([member(x) for member in self.members])
        log_p = torch.cat([torch.log_softmax(outputs[..., :N_T_BINS], -1),
                           torch.log_softmax(outputs[..., N_T_BINS:], -1)], -1)
        return torch.logsumexp(log_p, 0) - math.log(len(self.members))


@register_model
def spectra_ann(n_points=580, hidden=(256, 128), dropout=0.1):
    """The talk's ANN: two hidden layers on the flattened spectrum and mask."""
    return SpectraANN(n_points, tuple(hidden), dropout)


@register_model
def spectra_cnn(n_points=580, channels=(16, 32, 64), kernel=7, dropout=0.2):
    """1-D CNN classifier (``n_points`` is accepted for a uniform interface)."""
    del n_points  # adaptive pooling makes the CNN independent of the grid size
    return SpectraCNN(tuple(channels), kernel, dropout)


@register_model
def spectra_cnn_small(n_points=580, channels=(8, 16, 32), kernel=7, dropout=0.2):
    """The 1-D CNN at half the width: a quarter of the arithmetic, for a student of the ensemble (``--teacher``)."""
    return spectra_cnn(n_points, channels, kernel, dropout)


@register_model(trainable=False)  # built by `spectra autoencoder pretrain`
def spectra_autoencoder(n_points=580, latent=16, channels=(16, 32, 64)):
    """Autoencoder pretrained without labels."""
    return SpectraAutoencoder(n_points, latent, tuple(channels))


@register_model
def spectra_ae_classifier(n_points=580, latent=16, channels=(16, 32, 64), dropout=0.2, pretrained=None):
    """Encoder of a pretrained :func:`spectra_autoencoder` plus a classifier head.

    ``pretrained`` is the autoencoder checkpoint (file or run directory)
    whose encoder weights initialise it; a trained classifier loads without
    it, its own state dict replacing every weight.
    """
    model = SpectraAEClassifier(n_points, latent, tuple(channels), dropout)
    if pretrained:
        from deepscope.core.checkpoint import load_checkpoint

        state = load_checkpoint(pretrained)["state_dict"]
        encoder = {k: v for k, v in state.items() if k.startswith(("encoder.", "to_code."))}
        model.load_state_dict(encoder, strict=False)
    return model


@register_model(trainable=False)  # joined from trained members
def spectra_ensemble(members, n_points=580):
    """Several trained classifiers as one, ``members`` their ``(name, kwargs)`` (see ``train_ensemble``).

    ``n_points`` is accepted for a uniform interface; each member has its own.
    """
    del n_points
    return SpectraEnsemble([(name, dict(kwargs)) for name, kwargs in members])


def trained_model_kwargs(model_kwargs: dict) -> dict:
    """A trained classifier's keyword arguments without its pretrained-encoder path, which may not exist where
    the model is loaded and no longer matters: the trained state dict replaces those weights."""
    return {k: v for k, v in model_kwargs.items() if k != "pretrained"}
