import { InvalidArgumentError } from 'commander';

// Commander option parsers that refuse what the API would refuse, naming the flag.

export function wholeNumber(flag: string, what: string) {
  return (v: string) => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`${flag} must be ${what}`);
    return Number(v);
  };
}

export function positiveNumber(flag: string, what: string) {
  return (v: string) => {
    const n = Number(v);
    if (!/^\d*\.?\d+$/.test(v) || !(n > 0)) throw new InvalidArgumentError(`${flag} must be ${what}`);
    return n;
  };
}
