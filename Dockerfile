# The image Tulip's pipeline specs run in on a Pachyderm cluster.
#
#   docker build -t registry.example/tulip:0.1.0 .
#   docker push registry.example/tulip:0.1.0          # or: minikube image load ...
#   tulip deploy --image registry.example/tulip:0.1.0
#
# The specs in pipelines/*.json run `python3 -m training.embed`, `python3 -m training.train`,
# `/bin/bash` with `python3 -m auditor.stage ...`, `tensorboard ...` and
# `python3 -m conversion.convert`: all of them are on PATH here. See docs/pachyderm.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    KERAS_HOME=/opt/keras

WORKDIR /opt/tulip

# Dependencies first, so a code change does not reinstall TensorFlow. The tensorflow wheel
# runs on the CPU unless CUDA libraries are installed beside it (tensorflow[and-cuda]); none are.
# (README.m[d]: pyproject names the README; the pattern lets a checkout without one build)
COPY pyproject.toml README.m[d] ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

COPY pipelines ./pipelines
COPY training ./training
COPY conversion ./conversion
COPY auditor ./auditor
COPY reports ./reports
COPY mobile ./mobile
COPY tulip ./tulip
RUN pip install --no-deps . \
    && python -c "import tensorflow, ai_edge_litert, pipelines, training, conversion, auditor, reports" \
    && tulip --version

# The ImageNet MobileNet v1 weights the Embed stage starts from (ARCHITECTURE in the specs),
# cached in $KERAS_HOME so workers need no internet. Build with PRELOAD_WEIGHTS=0 to skip.
ARG PRELOAD_WEIGHTS=1
RUN if [ "$PRELOAD_WEIGHTS" = "1" ]; then \
      python -c "import keras; [keras.applications.MobileNet(input_shape=(224, 224, 3), alpha=a, weights='imagenet', include_top=False, pooling='avg') for a in (1.0, 0.25)]" \
      && chmod -R a+rX "$KERAS_HOME"; \
    fi

# Pachyderm mounts inputs at /pfs/<input> and collects /pfs/out; the spec's cmd is the entrypoint.
WORKDIR /
CMD ["python3", "-c", "print('Tulip pipeline image: Pachyderm runs the spec transform.cmd')"]
