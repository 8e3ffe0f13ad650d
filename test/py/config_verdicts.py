"""For each (model_type, key, value) case in the JSON file argv[1], whether transformers' config
class for that model_type accepts config.json with that value (the base config is argv[2]).
Prints JSON: a list of booleans in the order of the cases."""
import json
import sys
import warnings

from transformers import AutoConfig, CONFIG_MAPPING

warnings.filterwarnings("ignore")


def main(cases_file, base_file):
    cases = json.load(open(cases_file))
    base = json.load(open(base_file))
    out = []
    for c in cases:
        cfg = dict(base, model_type=c["model_type"])
        cfg[c["key"]] = c["value"]
        try:
            CONFIG_MAPPING[c["model_type"]].from_dict(cfg)
            out.append(True)
        except Exception:
            out.append(False)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
