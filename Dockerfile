# The project's image: mtl-search and its stack (TensorFlow, Keras 3, Ray, Optuna) on Python 3.11.
# CPU by default; build the GPU variant with:  docker build --build-arg EXTRAS=cuda -t mtl-search:gpu .
FROM python:3.11-slim

ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    RAY_USAGE_STATS_ENABLED=0 \
    TF_CPP_MIN_LOG_LEVEL=2

RUN useradd --create-home --uid 1000 mtl
WORKDIR /app
COPY pyproject.toml README.md ./
COPY mtl_models ./mtl_models
COPY search ./search
COPY configs ./configs
RUN python -m pip install ".${EXTRAS:+[$EXTRAS]}" && mkdir -p /results && chown mtl:mtl /results

USER mtl
# Ray's token authentication: every node and every driver needs the same RAY_AUTH_TOKEN.
ENV RAY_AUTH_MODE=token
CMD ["mtl-search", "--help"]
