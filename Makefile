# Reproduce the shipped default model (CPU, about 15 minutes on 2 cores): trained over a wide
# seeing range (benchmarks/populations/wide-seeing.yaml), tested on the default population.
# Needs the train extra: pip install torch==2.13.0 -e '.[train]'
WORK ?= work
.PHONY: model model-ou66 test lint

model:
	engine simulate --survey des_y3 --n 16000 --seed 1 \
	    --population benchmarks/populations/wide-seeing.yaml --out $(WORK)/train.zarr
	engine simulate --survey des_y3 --n 4000 --seed 2 --out $(WORK)/test.zarr
	engine train --train-set $(WORK)/train.zarr --test-set $(WORK)/test.zarr \
	    --out $(WORK)/ckpt --epochs 16 --occlusion 0.25 --seed 0 --no-export
	engine export --checkpoint $(WORK)/ckpt/checkpoint.pt --out src/lensfind/models/des_y3 \
	    --name des_y3 --test-set $(WORK)/test.zarr
	engine simulate --survey des_y3 --n 4000 --seed 3 --out $(WORK)/calib.zarr
	engine simulate --survey des_y3 --n 4000 --seed 4 --out $(WORK)/calib-eval.zarr
	engine calibrate --model src/lensfind/models/des_y3 --set $(WORK)/calib.zarr \
	    --eval-set $(WORK)/calib-eval.zarr

# The shipped ou66 (Wilde et al. 2022's OU-66 on simulated Euclid NISP cutouts, the paper's
# optimiser and inputs): about 29 epochs of 130 s on 2 quiet cores.
EU66 = engine simulate --survey euclid_wide --pixel-scale 0.3 --cutout-px 66
model-ou66:
	$(EU66) --n 16000 --seed 101 --out $(WORK)/eu-train.zarr
	$(EU66) --n 2000 --seed 102 --out $(WORK)/eu-val.zarr
	engine train --arch ou66 --train-set $(WORK)/eu-train.zarr --test-set $(WORK)/eu-val.zarr \
	    --out $(WORK)/ou66 --epochs 29 --lr 3e-4 --weight-decay 0 --optimizer adam \
	    --schedule constant --augment-per sample --no-export
	$(EU66) --n 4000 --seed 777 --out $(WORK)/eu-test.zarr
	engine export --checkpoint $(WORK)/ou66/checkpoint.pt --out src/lensfind/models/ou66 \
	    --name ou66 --test-set $(WORK)/eu-test.zarr
	$(EU66) --n 2000 --seed 778 --out $(WORK)/eu-calib.zarr
	$(EU66) --n 2000 --seed 779 --out $(WORK)/eu-calib-eval.zarr
	engine calibrate --model src/lensfind/models/ou66 --set $(WORK)/eu-calib.zarr \
	    --eval-set $(WORK)/eu-calib-eval.zarr

test:
	python -m pytest

lint:
	ruff check src tests && ruff format --check src tests
