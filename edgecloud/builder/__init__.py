"""The Prediction Builder: simulated ECG → template → hyperparameter search → a model that beats naive forecasts.

`data` simulates and splits the signal, `templates` holds and finds model templates, `search`
runs KerasTuner under a trial and time budget, `baselines` are the forecasts to beat, `build`
strings them together and `report` writes what happened.
"""
