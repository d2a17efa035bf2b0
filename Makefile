# Reproduce the shipped default model (CPU, about 15 minutes on 2 cores).
# Needs the train extra: pip install torch==2.13.0 -e '.[train]'
WORK ?= work
.PHONY: model test lint

model:
	engine simulate --survey des_y3 --n 16000 --seed 1 --out $(WORK)/train.zarr
	engine simulate --survey des_y3 --n 4000 --seed 2 --out $(WORK)/test.zarr
	engine train --train-set $(WORK)/train.zarr --test-set $(WORK)/test.zarr \
	    --out $(WORK)/ckpt --epochs 8 --occlusion 0.25 --seed 0 --no-export
	engine export --checkpoint $(WORK)/ckpt/checkpoint.pt --out src/lensfind/models/des_y3 \
	    --name des_y3 --test-set $(WORK)/test.zarr
	engine simulate --survey des_y3 --n 4000 --seed 3 --out $(WORK)/calib.zarr
	engine simulate --survey des_y3 --n 4000 --seed 4 --out $(WORK)/calib-eval.zarr
	engine calibrate --model src/lensfind/models/des_y3 --set $(WORK)/calib.zarr \
	    --eval-set $(WORK)/calib-eval.zarr

test:
	python -m pytest

lint:
	ruff check src tests && ruff format --check src tests
